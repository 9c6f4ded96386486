//! Load signals the engine publishes and the monitor reads (request counts, open streams,
//! burst state, per-scenario finished requests and the scenario mix's epoch), as plain
//! atomics so neither side waits for the other.
//!
//! `streams_open` is kept by the client's stream guard: +1 when a stream opens (a 2xx
//! `text/event-stream` head), −1 when it ends, however it ends.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Shared counters describing the load right now.
#[derive(Debug, Default)]
pub struct LoadSignals {
    /// Requests sent so far.
    pub requests_sent: AtomicU64,
    /// Requests finished so far (any outcome).
    pub requests_finished: AtomicU64,
    /// Streams open now, over all scenarios.
    pub streams_open: AtomicI64,
    /// True while the plan is in a burst.
    pub burst_active: AtomicBool,
    /// Requests the plan asked for so far (the target rate integrated over time, updated with
    /// the target-rate gauge), in millionths of a request.
    pub planned_micros: AtomicU64,
    /// Per-scenario signals for attributing growth to scenarios.
    pub mix: MixSignals,
}

/// What the monitor needs to attribute growth to scenarios.
#[derive(Debug, Default)]
pub struct MixSignals {
    /// Scenario names, in configuration order (the engine's scenario indices).
    pub names: Vec<String>,
    /// Requests finished so far per scenario (any outcome), same order.
    pub finished: Box<[AtomicU64]>,
    /// Whether the engine varies the mix (`[load] mix_variation` on, two or more weighted
    /// scenarios); set once when the engine is built.
    pub varies: AtomicBool,
    /// The mix's current epoch (period number since the start; 0 while the mix is fixed).
    pub epoch: AtomicU64,
}

impl MixSignals {
    /// Publishes the mix's current epoch.
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }
}

impl LoadSignals {
    /// Signals for the scenarios `names` (configuration order).
    pub fn for_scenarios(names: Vec<String>) -> Self {
        LoadSignals {
            mix: MixSignals {
                finished: names.iter().map(|_| AtomicU64::new(0)).collect(),
                names,
                ..MixSignals::default()
            },
            ..LoadSignals::default()
        }
    }
    /// Counts one finished request of scenario `i` (in the total and the scenario's count).
    pub fn finish(&self, i: usize) {
        self.requests_finished.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.mix.finished.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
    /// Each scenario's finished requests, into `out` (cleared first).
    pub fn finished_by_scenario(&self, out: &mut Vec<u64>) {
        out.clear();
        out.extend(self.mix.finished.iter().map(|c| c.load(Ordering::Relaxed)));
    }
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent.load(Ordering::Relaxed)
    }
    pub fn requests_finished(&self) -> u64 {
        self.requests_finished.load(Ordering::Relaxed)
    }
    pub fn streams_open(&self) -> i64 {
        self.streams_open.load(Ordering::Relaxed)
    }
    pub fn burst_active(&self) -> bool {
        self.burst_active.load(Ordering::Relaxed)
    }
    /// Requests the plan asked for so far.
    pub fn requests_planned(&self) -> f64 {
        self.planned_micros.load(Ordering::Relaxed) as f64 / 1e6
    }
    /// Adds `requests` (≥ 0) to the planned total.
    pub fn add_planned(&self, requests: f64) {
        let micros = (requests.max(0.0) * 1e6).round() as u64;
        self.planned_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_counts_the_total_and_the_scenario() {
        let s = LoadSignals::for_scenarios(vec!["a".into(), "b".into()]);
        s.finish(1);
        s.finish(1);
        s.finish(0);
        s.finish(7); // an index without a scenario counts in the total only
        assert_eq!(s.requests_finished(), 4);
        let mut out = vec![99];
        s.finished_by_scenario(&mut out);
        assert_eq!(out, [1, 2]);
        assert_eq!(s.mix.names, ["a", "b"]);
        s.mix.set_epoch(3);
        assert_eq!(s.mix.epoch.load(Ordering::Relaxed), 3);
        let d = LoadSignals::default();
        d.finish(0);
        d.finished_by_scenario(&mut out);
        assert!(out.is_empty());
        assert_eq!(d.requests_finished(), 1);
    }
}
