//! One point of a series buffer, how a tick is added to the open point, and how two adjacent
//! points merge when the whole-run buffer halves its resolution.
//!
//! Merge rules, per kind of value:
//! - counts (requests planned and sent, outcomes, ticks, burst ticks): added, so totals are
//!   preserved;
//! - gauges (open streams, RSS, fds, threads): their sum and sample count are
//!   added, so the mean of the merged point is the mean over both; the minimum and maximum are
//!   the min and max of both, so extremes are preserved;
//! - interval percentiles: the merged count is the sum; p99 is the larger p99 (an upper bound
//!   of the union's true p99, so a spike is never diluted); p50 is the count-weighted mean of
//!   the two p50s (the union's true median lies between them); max is the larger max.

use hdrhistogram::Histogram;

use crate::client::Outcome;
use crate::stats::Percentiles;

/// Number of outcomes, indexed by `Outcome::index()`.
pub const N_OUT: usize = Outcome::ALL.len();

/// Interval-latency accumulators: 2 significant digits (1 % resolution) from 1 µs to 1 h,
/// 26 KiB each.
const ACC_DIGITS: u8 = 2;
const ACC_MAX_MICROS: u64 = 3_600_000_000;

/// Percentiles of the values recorded in one point's interval, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quant {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Quant {
    /// Percentiles of `h` (microseconds); all zero when empty.
    pub fn of(h: &Histogram<u64>) -> Quant {
        let p = Percentiles::of_micros(h);
        Quant {
            count: p.count,
            p50: p.p50,
            p99: p.p99,
            max: p.max,
        }
    }

    /// The merge rule of the module docs.
    pub fn merge(a: Quant, b: Quant) -> Quant {
        if a.count == 0 {
            return b;
        }
        if b.count == 0 {
            return a;
        }
        let n = a.count + b.count;
        Quant {
            count: n,
            p50: (a.p50 * a.count as f64 + b.p50 * b.count as f64) / n as f64,
            p99: a.p99.max(b.p99),
            max: a.max.max(b.max),
        }
    }

    fn get(&self, f: impl Fn(&Quant) -> f64) -> Option<f64> {
        (self.count > 0).then(|| f(self))
    }

    pub fn p50(&self) -> Option<f64> {
        self.get(|q| q.p50)
    }

    pub fn p99(&self) -> Option<f64> {
        self.get(|q| q.p99)
    }
}

/// A gauge sampled at each tick: sum and count (for the mean), min and max.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gauge {
    pub sum: f64,
    pub n: u32,
    pub min: f64,
    pub max: f64,
}

impl Default for Gauge {
    fn default() -> Self {
        Gauge {
            sum: 0.0,
            n: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Gauge {
    pub fn add(&mut self, v: f64) {
        self.sum += v;
        self.n += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn merge(a: Gauge, b: Gauge) -> Gauge {
        Gauge {
            sum: a.sum + b.sum,
            n: a.n + b.n,
            min: a.min.min(b.min),
            max: a.max.max(b.max),
        }
    }

    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / f64::from(self.n))
    }

    pub fn min(&self) -> Option<f64> {
        (self.n > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<f64> {
        (self.n > 0).then_some(self.max)
    }
}

/// One monitored process in a point: RSS (bytes), open fds, threads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcPoint {
    pub rss: Gauge,
    pub fds: Gauge,
    pub threads: Gauge,
}

impl ProcPoint {
    fn merge(a: ProcPoint, b: ProcPoint) -> ProcPoint {
        ProcPoint {
            rss: Gauge::merge(a.rss, b.rss),
            fds: Gauge::merge(a.fds, b.fds),
            threads: Gauge::merge(a.threads, b.threads),
        }
    }
}

/// What one tick adds: the interval `(start, at]` and the values read at `at`.
#[derive(Debug, Clone, Copy)]
pub struct TickDelta<'a> {
    /// The previous tick's time (Unix seconds).
    pub start: f64,
    /// This tick's time.
    pub at: f64,
    /// Requests the plan asked for since the previous tick.
    pub planned: f64,
    /// Requests sent since the previous tick.
    pub sent: u64,
    pub burst: bool,
    /// Finished requests by outcome since the previous tick.
    pub outcomes: [u64; N_OUT],
    pub streams_active: f64,
    /// Per process slot: rss, fds, threads (absent when unreadable).
    pub procs: &'a [[Option<f64>; 3]],
}

/// A closed span of time `[start, end]` and what happened in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub start: f64,
    pub end: f64,
    /// Ticks added.
    pub ticks: u32,
    /// Requests the plan asked for.
    pub planned: f64,
    pub sent: u64,
    pub burst_ticks: u32,
    pub outcomes: [u64; N_OUT],
    pub streams: Gauge,
    pub latency: Quant,
    pub ttft: Quant,
    /// Per process slot.
    pub procs: Vec<ProcPoint>,
}

impl Point {
    pub fn empty(start: f64) -> Point {
        Point {
            start,
            end: start,
            ticks: 0,
            planned: 0.0,
            sent: 0,
            burst_ticks: 0,
            outcomes: [0; N_OUT],
            streams: Gauge::default(),
            latency: Quant::default(),
            ttft: Quant::default(),
            procs: Vec::new(),
        }
    }

    /// Seconds covered.
    pub fn dt(&self) -> f64 {
        self.end - self.start
    }

    /// Mid-time, where the point is drawn.
    pub fn mid(&self) -> f64 {
        (self.start + self.end) / 2.0
    }

    fn absorb(&mut self, d: &TickDelta<'_>) {
        self.end = d.at;
        self.ticks += 1;
        self.planned += d.planned;
        self.sent += d.sent;
        self.burst_ticks += u32::from(d.burst);
        for (o, n) in self.outcomes.iter_mut().zip(d.outcomes) {
            *o += n;
        }
        self.streams.add(d.streams_active);
        if self.procs.len() < d.procs.len() {
            self.procs.resize(d.procs.len(), ProcPoint::default());
        }
        for (p, [rss, fds, threads]) in self.procs.iter_mut().zip(d.procs) {
            for (g, v) in [
                (&mut p.rss, rss),
                (&mut p.fds, fds),
                (&mut p.threads, threads),
            ] {
                if let Some(v) = v {
                    g.add(*v);
                }
            }
        }
    }

    /// `self` followed by `later`, by the rules of the module docs.
    pub fn merge(self, later: Point) -> Point {
        let n = self.procs.len().max(later.procs.len());
        let proc = |v: &Vec<ProcPoint>, i: usize| v.get(i).copied().unwrap_or_default();
        let mut outcomes = self.outcomes;
        for (o, n) in outcomes.iter_mut().zip(later.outcomes) {
            *o += n;
        }
        Point {
            start: self.start,
            end: later.end,
            ticks: self.ticks + later.ticks,
            planned: self.planned + later.planned,
            sent: self.sent + later.sent,
            burst_ticks: self.burst_ticks + later.burst_ticks,
            outcomes,
            streams: Gauge::merge(self.streams, later.streams),
            latency: Quant::merge(self.latency, later.latency),
            ttft: Quant::merge(self.ttft, later.ttft),
            procs: (0..n)
                .map(|i| ProcPoint::merge(proc(&self.procs, i), proc(&later.procs, i)))
                .collect(),
        }
    }
}

/// The point being filled, with its interval-latency histograms.
#[derive(Debug)]
pub struct Open {
    pub point: Point,
    latency: Histogram<u64>,
    ttft: Histogram<u64>,
}

fn accumulator() -> Histogram<u64> {
    Histogram::new_with_bounds(1, ACC_MAX_MICROS, ACC_DIGITS).expect("static histogram bounds")
}

impl Open {
    pub fn new(start: f64) -> Open {
        Open {
            point: Point::empty(start),
            latency: accumulator(),
            ttft: accumulator(),
        }
    }

    pub fn absorb(&mut self, d: &TickDelta<'_>) {
        self.point.absorb(d);
    }

    /// Records `n` latency values of `micros`.
    pub fn record_latency(&mut self, micros: u64, n: u64) {
        self.latency
            .saturating_record_n(micros.clamp(1, ACC_MAX_MICROS), n);
    }

    /// Records `n` TTFT values of `micros`.
    pub fn record_ttft(&mut self, micros: u64, n: u64) {
        self.ttft
            .saturating_record_n(micros.clamp(1, ACC_MAX_MICROS), n);
    }

    /// The point so far, with its percentiles.
    pub fn snapshot(&self) -> Point {
        let mut p = self.point.clone();
        p.latency = Quant::of(&self.latency);
        p.ttft = Quant::of(&self.ttft);
        p
    }

    /// Returns the finished point and starts the next one where it ended.
    pub fn close(&mut self) -> Point {
        let p = self.snapshot();
        self.point = Point::empty(p.end);
        self.point.procs.reserve(p.procs.len());
        self.latency.reset();
        self.ttft.reset();
        p
    }

    /// Heap bytes held (the two histograms and the process slots).
    pub fn heap_bytes(&self) -> usize {
        hist_bytes(&self.latency)
            + hist_bytes(&self.ttft)
            + self.point.procs.capacity() * std::mem::size_of::<ProcPoint>()
    }
}

/// Heap bytes of a histogram's counts array.
pub fn hist_bytes(h: &Histogram<u64>) -> usize {
    h.distinct_values() * std::mem::size_of::<u64>()
}
