//! The run's states over time and how a run is told to stop.
//!
//! # States
//! A run moves forward through at most five states, each entered at most once, in this order
//! ([`RunState`], the `state` label of `soakd_run_state`):
//! - `idle` (`[run] idle`, skipped when 0): the watched processes are sampled, nothing is sent;
//! - `load`: the plan runs;
//! - `drain`: the plan has ended (its duration, or a stop); in-flight requests finish within
//!   `[run] grace` (and anything else that belongs to the end of the load waits here);
//! - `cooldown` (`[run] cooldown`, skipped when 0): sampling goes on with no traffic;
//! - `linger` (`[run] linger`, skipped when 0): after the summary, `/metrics`, `/status` and
//!   `/series` keep answering with the final state for that long, so Prometheus scrapes it;
//!   then soakd exits with the verdict.
//!
//! [`RunPhases`] holds the current state (an atomic the monitor reads at every sample), the
//! instant each state was entered (at most five entries: states only move forward, so the
//! timeline is bounded) and the `soakd_run_state{state}` handles, resolved once: exactly one of
//! them is 1 once the run has started. The timeline gives the labelled time spans the page and
//! the report draw as bands ([`RunPhases::spans`]).
//!
//! # Stopping
//! [`Shutdown`] is what the signal handler (`main`) and the run share. Each SIGTERM/SIGINT is
//! handed to [`Shutdown::on_signal`], which decides ([`SignalAction`]):
//! - during `linger`: the linger ends at once and soakd exits with the run's verdict;
//! - otherwise the first signal stops the run: the load ends (in-flight requests get the
//!   grace period), a remaining idle or cooldown is skipped, the summary is written and the run
//!   still lingers — so a stopped Deployment's final counters are scraped too — until the
//!   linger ends or another signal arrives;
//! - a second signal before the linger quits at once (exit 130).
//!
//! In Kubernetes a pod's SIGTERM therefore needs `terminationGracePeriodSeconds` above
//! `grace + linger` (`config/kubernetes.toml`, `k8s/`; checked by `tests/k8s.rs`).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::IntGauge;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::metrics::{label_enum, Metrics};

label_enum! {
    /// The run's state (`state` label of `soakd_run_state`), in the order a run goes through
    /// them.
    RunState {
        Idle => "idle",
        Load => "load",
        Drain => "drain",
        Cooldown => "cooldown",
        Linger => "linger",
    }
}

/// No state entered yet (the run has not started).
const NONE: u8 = u8::MAX;

/// One state's stretch of time, as the page, `/status` and the report show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseSpan {
    /// The state (`idle`, `load`, `drain`, `cooldown`, `linger`).
    pub state: &'static str,
    /// When it was entered, Unix seconds.
    pub from: f64,
    /// When the next state was entered, Unix seconds; absent for the current state.
    pub to: Option<f64>,
    /// Seconds spent in it so far.
    pub seconds: f64,
}

/// The run's current state and the instant each state was entered.
pub struct RunPhases {
    current: AtomicU8,
    /// (state, monotonic instant, Unix seconds), at most one entry per state.
    entered: Mutex<Vec<(RunState, Instant, f64)>>,
    /// `soakd_run_state{state}` by [`RunState::index`]; empty without a registry.
    gauges: Vec<IntGauge>,
}

impl RunPhases {
    /// Phases with the `soakd_run_state` handles of `metrics`, every state at 0.
    pub fn new(metrics: &Metrics) -> Self {
        let gauges: Vec<IntGauge> = RunState::ALL
            .iter()
            .map(|s| metrics.run_state.with_label_values(&[s.as_str()]))
            .collect();
        gauges.iter().for_each(|g| g.set(0));
        RunPhases {
            gauges,
            ..Self::detached()
        }
    }

    /// Phases that export nothing (tests, tools that replay a run).
    pub fn detached() -> Self {
        RunPhases {
            current: AtomicU8::new(NONE),
            entered: Mutex::new(Vec::with_capacity(RunState::ALL.len())),
            gauges: Vec::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(RunState, Instant, f64)>> {
        self.entered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enters `state` now, unless the run is already in it or past it (states only move
    /// forward). Returns whether the state changed; the change is logged.
    pub fn enter(&self, state: RunState) -> bool {
        let mut entered = self.lock();
        if entered.last().is_some_and(|(s, _, _)| *s >= state) {
            return false;
        }
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        entered.push((state, Instant::now(), unix));
        self.current.store(state as u8, Ordering::Relaxed);
        for (i, g) in self.gauges.iter().enumerate() {
            g.set(i64::from(i == state.index()));
        }
        drop(entered);
        tracing::info!(state = state.as_str(), "run state: {state}");
        true
    }

    /// The current state; `None` before the run started.
    pub fn current(&self) -> Option<RunState> {
        RunState::ALL
            .get(usize::from(self.current.load(Ordering::Relaxed)))
            .copied()
    }

    /// When `state` was entered, if it was.
    pub fn entered_at(&self, state: RunState) -> Option<Instant> {
        self.lock()
            .iter()
            .find(|(s, _, _)| *s == state)
            .map(|(_, at, _)| *at)
    }

    /// How long the run spent in `state` so far (0 when never entered).
    pub fn time_in(&self, state: RunState) -> Duration {
        let entered = self.lock();
        let Some(i) = entered.iter().position(|(s, _, _)| *s == state) else {
            return Duration::ZERO;
        };
        let end = entered
            .get(i + 1)
            .map_or_else(Instant::now, |(_, at, _)| *at);
        end.saturating_duration_since(entered[i].1)
    }

    /// Every state entered so far, oldest first, with its span.
    pub fn spans(&self) -> Vec<PhaseSpan> {
        let entered = self.lock();
        let now = Instant::now();
        entered
            .iter()
            .enumerate()
            .map(|(i, (s, at, unix))| {
                let next = entered.get(i + 1);
                let end = next.map_or(now, |(_, t, _)| *t);
                PhaseSpan {
                    state: s.as_str(),
                    from: *unix,
                    to: next.map(|(_, _, u)| *u),
                    seconds: end.saturating_duration_since(*at).as_secs_f64(),
                }
            })
            .collect()
    }
}

/// What one SIGTERM/SIGINT does ([`Shutdown::on_signal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// The first signal: the run stops (drain, summary, linger).
    StopRun,
    /// A signal during the linger: it ends now and soakd exits with the verdict.
    EndLinger,
    /// A second signal before the linger: quit at once (exit 130).
    QuitNow,
}

/// How a run is told to stop; shared by the signal handler and the run (module docs).
#[derive(Debug, Default)]
pub struct Shutdown {
    stop: CancellationToken,
    end_linger: CancellationToken,
    lingering: AtomicBool,
}

impl Shutdown {
    /// Nothing stopped yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when the run is asked to stop (first signal, `abort_on_fail`).
    pub fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// Handles one signal (module docs).
    pub fn on_signal(&self) -> SignalAction {
        if self.lingering.load(Ordering::SeqCst) {
            self.end_linger.cancel();
            SignalAction::EndLinger
        } else if !self.stop.is_cancelled() {
            self.stop.cancel();
            SignalAction::StopRun
        } else {
            SignalAction::QuitNow
        }
    }

    /// Lingers for `d`, or until a signal ends it.
    pub async fn linger(&self, d: Duration) {
        self.lingering.store(true, Ordering::SeqCst);
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.end_linger.cancelled() => {
                tracing::info!("linger ended by a signal");
            }
        }
    }
}

/// Waits `d`, or less when `stop` is cancelled first; returns whether it was cut short.
pub async fn wait_unless_stopped(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.cancelled() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge_values(m: &Metrics) -> Vec<i64> {
        RunState::ALL
            .iter()
            .map(|s| m.run_state.with_label_values(&[s.as_str()]).get())
            .collect()
    }

    #[test]
    fn states_move_forward_and_exactly_one_gauge_is_set() {
        let m = Metrics::new("r", "0").unwrap();
        let p = RunPhases::new(&m);
        assert_eq!(p.current(), None);
        assert_eq!(gauge_values(&m), [0, 0, 0, 0, 0]);
        assert!(p.enter(RunState::Idle));
        assert_eq!(gauge_values(&m), [1, 0, 0, 0, 0]);
        assert!(p.enter(RunState::Load));
        assert!(!p.enter(RunState::Idle), "never back");
        assert!(!p.enter(RunState::Load), "never twice");
        // Skipping a state (no cooldown) is allowed.
        assert!(p.enter(RunState::Drain));
        assert!(p.enter(RunState::Linger));
        assert_eq!(p.current(), Some(RunState::Linger));
        assert_eq!(gauge_values(&m), [0, 0, 0, 0, 1]);
        let spans = p.spans();
        let states: Vec<&str> = spans.iter().map(|s| s.state).collect();
        assert_eq!(states, ["idle", "load", "drain", "linger"]);
        for w in spans.windows(2) {
            assert_eq!(
                w[0].to,
                Some(w[1].from),
                "each span ends where the next begins"
            );
        }
        assert_eq!(spans[3].to, None, "the current state is open");
        assert!(p.entered_at(RunState::Cooldown).is_none());
        assert_eq!(p.time_in(RunState::Cooldown), Duration::ZERO);
        assert!(m.encode().contains("soakd_run_state{state=\"linger\"} 1"));
    }

    #[test]
    fn signals_stop_then_quit_and_end_a_linger() {
        let s = Shutdown::new();
        assert_eq!(s.on_signal(), SignalAction::StopRun);
        assert!(s.stop().is_cancelled());
        assert_eq!(s.on_signal(), SignalAction::QuitNow);
        // Once lingering, any signal ends the linger instead of quitting.
        s.lingering.store(true, Ordering::SeqCst);
        assert_eq!(s.on_signal(), SignalAction::EndLinger);
        assert!(s.end_linger.is_cancelled());
        let fresh = Shutdown::new();
        fresh.lingering.store(true, Ordering::SeqCst);
        assert_eq!(fresh.on_signal(), SignalAction::EndLinger);
        assert!(
            !fresh.stop().is_cancelled(),
            "a linger signal stops nothing else"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_linger_lasts_its_time_or_until_a_signal() {
        let s = std::sync::Arc::new(Shutdown::new());
        let t0 = tokio::time::Instant::now();
        s.linger(Duration::from_secs(5)).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(5));
        let s = std::sync::Arc::new(Shutdown::new());
        let s2 = s.clone();
        let t0 = tokio::time::Instant::now();
        let waiter = tokio::spawn(async move { s2.linger(Duration::from_secs(60)).await });
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(s.on_signal(), SignalAction::EndLinger);
        waiter.await.unwrap();
        assert_eq!(t0.elapsed(), Duration::from_secs(2));
        let stop = CancellationToken::new();
        stop.cancel();
        assert!(wait_unless_stopped(Duration::from_secs(9), &stop).await);
        assert!(!wait_unless_stopped(Duration::from_secs(1), &CancellationToken::new()).await);
    }
}
