//! Load signals the engine publishes and the monitor reads (request counts, open streams,
//! burst state), as plain atomics so neither side waits for the other.

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
}

impl LoadSignals {
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
