//! [`LiveSeries`]: the [`Series`] of a running soak, fed from the run's per-scenario metric
//! handles, HDR stats, load signals and monitor.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::point::N_OUT;
use super::{Series, Span, TickInput};
use crate::client::Outcome;
use crate::engine::ScenarioHandles;
use crate::monitor::{Monitor, MonitorReport};
use crate::phases::RunPhases;
use crate::plan::Phase;
use crate::signals::LoadSignals;
use crate::stats::Stats;

/// The expected time between two [`LiveSeries::sample`] calls (the side ticker's).
pub const TICK_SECS: f64 = 1.0;

/// What [`LiveSeries`] reads.
pub struct LiveParts {
    pub stats: Arc<Stats>,
    pub signals: Arc<LoadSignals>,
    pub scenarios: Vec<ScenarioHandles>,
    pub monitor: Option<Arc<Monitor>>,
    /// The run's states, served as `phase` spans.
    pub phases: Option<Arc<RunPhases>>,
}

/// The run's series, shared by the side ticker (writes) and the admin server (reads).
pub struct LiveSeries {
    parts: LiveParts,
    clock: Instant,
    started_unix: f64,
    series: Mutex<Series>,
}

impl LiveSeries {
    /// Starts recording now.
    pub fn new(parts: LiveParts) -> LiveSeries {
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        LiveSeries {
            parts,
            clock: Instant::now(),
            started_unix,
            series: Mutex::new(Series::new(started_unix, TICK_SECS)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Series> {
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads everything and adds one tick; call about once a second.
    pub fn sample(&self) {
        let input = self.read();
        self.lock().tick(input);
    }

    fn read(&self) -> TickInput {
        let p = &self.parts;
        let mut outcomes = [0u64; N_OUT];
        let mut streams = 0;
        for m in p.scenarios.iter().map(|h| &h.metrics) {
            streams += m.streams_active.get();
            for o in Outcome::ALL {
                for ph in Phase::ALL {
                    outcomes[o.index()] += m.request(*ph, *o).get();
                }
            }
        }
        TickInput {
            at: self.started_unix + self.clock.elapsed().as_secs_f64(),
            requests_planned: p.signals.requests_planned(),
            requests_sent: p.signals.requests_sent(),
            burst: p.signals.burst_active(),
            outcomes,
            streams_active: streams as f64,
            latency: Some(p.stats.histogram(crate::stats::Series::Duration)),
            ttft: Some(p.stats.histogram(crate::stats::Series::Ttft)),
            monitor: p.monitor.as_ref().map(|m| m.snapshot()),
        }
    }

    /// The `GET /series` document, serialised, with the run's states as `phase` spans.
    pub fn to_json(&self) -> Vec<u8> {
        let spans: Vec<Span> = self
            .parts
            .phases
            .as_ref()
            .map(|p| p.spans())
            .unwrap_or_default()
            .into_iter()
            .map(|p| Span {
                kind: "phase",
                label: p.state,
                from: p.from,
                to: p.to,
            })
            .collect();
        let s = self.lock();
        let mut json = s.json();
        json.spans = spans;
        serde_json::to_vec(&json).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Takes a last sample so the final partial interval is included, then pins the fitted
    /// lines and verdicts to `monitor` (the summary's own report), so the report's charts and
    /// its summary agree.
    pub fn finish(&self, monitor: Option<&MonitorReport>) {
        self.sample();
        if monitor.is_some() {
            self.lock().set_monitor(monitor.cloned());
        }
    }

    /// Heap bytes of the buffers (see [`Series::heap_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        self.lock().heap_bytes()
    }
}
