//! Bounded, downsampled time series of a run, for the live page (`GET /series`) and the HTML
//! report.
//!
//! # What is recorded
//! The side ticker calls [`LiveSeries::sample`] once a second. Each tick reads cumulative
//! counters and gauges and adds the difference since the previous tick to the open point of
//! two buffers:
//! - planned and achieved rate: requests the plan asked for (the engine integrates its target
//!   rate every 100 ms, [`crate::signals::LoadSignals::requests_planned`]) and requests sent,
//!   each divided by the point's duration, so both count the same interval;
//! - burst: the fraction of ticks that saw a burst (the page draws a band where it is > 0);
//! - request duration and TTFT, p50 and p99 OF THE POINT'S INTERVAL: at each tick the values
//!   recorded since the previous tick are the bin-by-bin difference of two cumulative HDR
//!   histograms ([`crate::stats::Stats::histogram`]), added into the open point's own
//!   histogram (2 significant digits); the point's percentiles are read from it when it closes;
//! - finished requests by outcome (shown per second);
//! - open streams (`soakd_streams_active` summed over scenarios; mean and max over the ticks);
//! - per monitored process: RSS (mean, min, max), open fds and threads (means), from the
//!   monitor's latest sample;
//! - the monitor's latest report, for each window's fitted line (slope, intercept, span) and
//!   the leak verdicts.
//!
//! # Buffers
//! - `recent`: a ring of [`RECENT_POINTS`] points of [`RECENT_STEP`] (the last hour at 10 s);
//!   the oldest point is dropped when a new one closes.
//! - `run`: the whole run. Its points start at the tick interval; when it holds
//!   [`RUN_POINTS`] closed points, adjacent pairs are merged ([`point`] has the rules: counts
//!   add up, gauge means are weighted by their sample counts, minima and maxima are kept, p99
//!   takes the larger value, p50 the count-weighted mean) and its step doubles. So it holds
//!   fewer than `RUN_POINTS` closed points, and at least half that once it first filled,
//!   whatever the run's length.
//!
//! A point closes when the tick that ends it brings its duration within half a tick of the
//! buffer's step. The open point of each buffer is served too, as the last point. Monitored
//! processes get a slot each by name, at most [`MAX_PROCESSES`]. Memory is fixed by these
//! caps: about 470 KiB of histograms, plus per buffer point about 240 B and 96 B per process
//! (940 KiB with four processes after 24 h, see the tests and BENCHMARKS.md).

mod json;
mod live;
pub mod point;

use std::collections::VecDeque;

use hdrhistogram::Histogram;

use crate::monitor::MonitorReport;
pub use json::{FitLine, SeriesJson, Span};
pub use live::{LiveParts, LiveSeries};
use point::{hist_bytes, Open, Point, TickDelta, N_OUT};

/// Step of the `recent` ring, seconds.
pub const RECENT_STEP: f64 = 10.0;
/// Points of the `recent` ring: one hour at [`RECENT_STEP`].
pub const RECENT_POINTS: usize = 360;
/// Most closed points of the `run` buffer before it halves its resolution.
pub const RUN_POINTS: usize = 512;
/// Most monitored processes given a slot; later ones are not recorded.
pub const MAX_PROCESSES: usize = 32;

/// What one tick reads: cumulative counters, gauges now, cumulative latency histograms.
#[derive(Debug, Default)]
pub struct TickInput {
    /// Unix seconds (monotonic within a run).
    pub at: f64,
    /// Requests the plan asked for since the start.
    pub requests_planned: f64,
    /// Requests sent since the start.
    pub requests_sent: u64,
    /// True while a burst runs.
    pub burst: bool,
    /// Finished requests by outcome since the start.
    pub outcomes: [u64; N_OUT],
    /// Streams open now.
    pub streams_active: f64,
    /// Every request duration so far (µs), when read this tick.
    pub latency: Option<Histogram<u64>>,
    /// Every TTFT so far (µs), when read this tick.
    pub ttft: Option<Histogram<u64>>,
    /// The monitor's state now.
    pub monitor: Option<MonitorReport>,
}

/// How a buffer makes room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Drop the oldest point.
    Ring,
    /// Merge adjacent pairs and double the step.
    Halve,
}

/// A bounded list of closed points plus the open one.
#[derive(Debug)]
pub struct Buffer {
    mode: Mode,
    step: f64,
    cap: usize,
    points: VecDeque<Point>,
    open: Open,
}

impl Buffer {
    fn new(mode: Mode, step: f64, cap: usize, start: f64) -> Buffer {
        Buffer {
            mode,
            step,
            cap,
            points: VecDeque::with_capacity(cap),
            open: Open::new(start),
        }
    }

    /// Seconds per point now.
    pub fn step(&self) -> f64 {
        self.step
    }

    /// Closed points.
    pub fn closed(&self) -> impl Iterator<Item = &Point> {
        self.points.iter()
    }

    /// Closed points followed by the open one when it has a tick.
    pub fn points(&self) -> Vec<Point> {
        let mut v: Vec<Point> = self.points.iter().cloned().collect();
        if self.open.point.ticks > 0 {
            v.push(self.open.snapshot());
        }
        v
    }

    fn absorb(&mut self, d: &TickDelta<'_>) {
        self.open.absorb(d);
        let p = &self.open.point;
        if p.dt() + (d.at - d.start) / 2.0 >= self.step {
            let closed = self.open.close();
            self.push(closed);
        }
    }

    fn push(&mut self, p: Point) {
        match self.mode {
            Mode::Ring => {
                if self.points.len() == self.cap {
                    self.points.pop_front();
                }
                self.points.push_back(p);
            }
            Mode::Halve => {
                self.points.push_back(p);
                if self.points.len() >= self.cap {
                    self.halve();
                }
            }
        }
    }

    fn halve(&mut self) {
        let old = std::mem::take(&mut self.points);
        let mut it = old.into_iter();
        let mut merged = VecDeque::with_capacity(self.cap);
        while let Some(a) = it.next() {
            merged.push_back(match it.next() {
                Some(b) => a.merge(b),
                None => a,
            });
        }
        self.points = merged;
        self.step *= 2.0;
    }

    fn heap_bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<Point>()
            + self
                .points
                .iter()
                .map(|p| p.procs.capacity() * std::mem::size_of::<point::ProcPoint>())
                .sum::<usize>()
            + self.open.heap_bytes()
    }
}

/// Cumulative values of the previous tick.
#[derive(Debug)]
struct Prev {
    at: f64,
    planned: f64,
    sent: u64,
    outcomes: [u64; N_OUT],
    latency: Option<Histogram<u64>>,
    ttft: Option<Histogram<u64>>,
}

/// The two buffers and what the next tick needs.
#[derive(Debug)]
pub struct Series {
    started: f64,
    recent: Buffer,
    run: Buffer,
    prev: Prev,
    names: Vec<String>,
    slots: Vec<[Option<f64>; 3]>,
    monitor: Option<MonitorReport>,
}

impl Series {
    /// Series starting at `started` (Unix seconds), sampled every `tick_secs`.
    pub fn new(started: f64, tick_secs: f64) -> Series {
        Series {
            started,
            recent: Buffer::new(Mode::Ring, RECENT_STEP, RECENT_POINTS, started),
            run: Buffer::new(Mode::Halve, tick_secs, RUN_POINTS, started),
            prev: Prev {
                at: started,
                planned: 0.0,
                sent: 0,
                outcomes: [0; N_OUT],
                latency: None,
                ttft: None,
            },
            names: Vec::new(),
            slots: Vec::new(),
            monitor: None,
        }
    }

    /// When the series started (Unix seconds).
    pub fn started(&self) -> f64 {
        self.started
    }

    /// The last hour at 10 s.
    pub fn recent(&self) -> &Buffer {
        &self.recent
    }

    /// The whole run.
    pub fn run(&self) -> &Buffer {
        &self.run
    }

    /// Process names, by slot.
    pub fn process_names(&self) -> &[String] {
        &self.names
    }

    /// The latest monitor report.
    pub fn monitor(&self) -> Option<&MonitorReport> {
        self.monitor.as_ref()
    }

    /// Replaces the latest monitor report (the report pins the summary's own).
    pub fn set_monitor(&mut self, report: Option<MonitorReport>) {
        self.monitor = report;
    }

    /// Adds one tick. A tick not after the previous one is ignored.
    pub fn tick(&mut self, mut input: TickInput) {
        if input.at <= self.prev.at {
            return;
        }
        let sent = input.requests_sent.saturating_sub(self.prev.sent);
        let mut outcomes = [0; N_OUT];
        for ((d, now), before) in outcomes
            .iter_mut()
            .zip(input.outcomes)
            .zip(self.prev.outcomes)
        {
            *d = now.saturating_sub(before);
        }
        if let Some(cur) = input.latency.take() {
            let opens = [&mut self.recent.open, &mut self.run.open];
            record_new(cur, &mut self.prev.latency, opens, Open::record_latency);
        }
        if let Some(cur) = input.ttft.take() {
            let opens = [&mut self.recent.open, &mut self.run.open];
            record_new(cur, &mut self.prev.ttft, opens, Open::record_ttft);
        }
        if let Some(report) = input.monitor.take() {
            self.read_processes(&report);
            self.monitor = Some(report);
        }
        let d = TickDelta {
            start: self.prev.at,
            at: input.at,
            planned: (input.requests_planned - self.prev.planned).max(0.0),
            sent,
            burst: input.burst,
            outcomes,
            streams_active: input.streams_active,
            procs: &self.slots,
        };
        self.recent.absorb(&d);
        self.run.absorb(&d);
        self.prev.at = input.at;
        self.prev.planned = input.requests_planned;
        self.prev.sent = input.requests_sent;
        self.prev.outcomes = input.outcomes;
    }

    fn read_processes(&mut self, report: &MonitorReport) {
        for s in &mut self.slots {
            *s = [None; 3];
        }
        for p in &report.processes {
            let slot = match self.names.iter().position(|n| *n == p.name) {
                Some(i) => i,
                None if self.names.len() < MAX_PROCESSES => {
                    self.names.push(p.name.clone());
                    self.slots.push([None; 3]);
                    self.names.len() - 1
                }
                None => continue,
            };
            // A process that is down has no current values.
            if p.up {
                self.slots[slot] = [p.rss_bytes, p.open_fds, p.threads];
            }
        }
    }

    /// Heap bytes held: both buffers, the histograms and the latest monitor report.
    pub fn heap_bytes(&self) -> usize {
        let hist = |h: &Option<Histogram<u64>>| h.as_ref().map_or(0, hist_bytes);
        let names: usize = self.names.iter().map(|n| n.capacity() + 24).sum();
        let monitor = self.monitor.as_ref().map_or(0, |m| {
            m.processes
                .iter()
                .map(|p| {
                    std::mem::size_of_val(p)
                        + p.name.capacity()
                        + p.windows.capacity() * std::mem::size_of::<crate::monitor::WindowReport>()
                        + p.windows.iter().map(|w| w.window.capacity()).sum::<usize>()
                })
                .sum::<usize>()
                + m.windows.iter().map(|w| w.capacity() + 24).sum::<usize>()
        });
        self.recent.heap_bytes()
            + self.run.heap_bytes()
            + hist(&self.prev.latency)
            + hist(&self.prev.ttft)
            + names
            + self.slots.capacity() * std::mem::size_of::<[Option<f64>; 3]>()
            + monitor
    }
}

/// Records the values `cur` holds beyond `prev` into both open points with `record`, then
/// keeps `cur` as `prev`.
fn record_new(
    cur: Histogram<u64>,
    prev: &mut Option<Histogram<u64>>,
    opens: [&mut Open; 2],
    record: fn(&mut Open, u64, u64),
) {
    let [recent, run] = opens;
    each_new_value(&cur, prev.as_ref(), |v, n| {
        record(recent, v, n);
        record(run, v, n);
    });
    *prev = Some(cur);
}

/// Calls `f(value, count)` for every value recorded in `cur` and not in `prev` (bin by bin;
/// both cumulative histograms of the same configuration). A bin that shrank (a reset) counts
/// nothing.
fn each_new_value(
    cur: &Histogram<u64>,
    prev: Option<&Histogram<u64>>,
    mut f: impl FnMut(u64, u64),
) {
    let before = prev.map_or(0, |p| p.len());
    if cur.len() <= before {
        return;
    }
    for v in cur.iter_recorded() {
        let value = v.value_iterated_to();
        let now = v.count_at_value();
        let was = prev.map_or(0, |p| p.count_at(value));
        if now > was {
            f(value, now - was);
        }
    }
}

#[cfg(test)]
mod tests;
