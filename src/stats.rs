//! Bounded HDR histograms for the percentiles in `/status`, the progress line and the summary.
//!
//! Prometheus histograms have coarse buckets; these keep 3 significant digits from 1 µs to
//! 1 hour in a fixed amount of memory (a few hundred KiB in all, whatever the run's length).
//! Recording goes to one of a few shards picked per thread, so workers on different threads
//! rarely contend for a lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

pub mod wire;

const SHARDS: usize = 4;
const MAX_MICROS: u64 = 3_600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// An empty histogram of the bounds every series uses (1 µs to 1 h, 3 digits).
fn empty() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_DIGITS)
        .expect("static histogram bounds are valid")
}

/// Which latency series a value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// End-to-end request duration from the intended send time.
    Duration,
    /// Time to first token.
    Ttft,
    /// Gap between content-bearing chunks.
    ChunkGap,
    /// Actual send minus intended send.
    ScheduleLag,
}

impl Series {
    const ALL: [Series; 4] = [
        Series::Duration,
        Series::Ttft,
        Series::ChunkGap,
        Series::ScheduleLag,
    ];
    fn index(self) -> usize {
        self as usize
    }
}

/// Percentiles of one series, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

struct Sharded {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Sharded {
    fn new() -> Self {
        Sharded {
            shards: (0..SHARDS).map(|_| Mutex::new(empty())).collect(),
        }
    }

    fn record(&self, micros: u64) {
        let shard = shard_index();
        let mut h = self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        h.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    fn merged(&self) -> Histogram<u64> {
        let mut all = empty();
        for s in &self.shards {
            let h = s.lock().unwrap_or_else(|p| p.into_inner());
            // Same bounds on both sides, so adding cannot fail.
            let _ = all.add(&*h);
        }
        all
    }
}

fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// Live latency statistics of a run.
pub struct Stats {
    series: Vec<Sharded>,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            series: Series::ALL.iter().map(|_| Sharded::new()).collect(),
        }
    }

    /// Records one value; values above an hour are clamped to an hour.
    pub fn record(&self, series: Series, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS);
        self.series[series.index()].record(micros);
    }

    /// Everything recorded so far in one histogram (microseconds; 1 µs to 1 h, 3 digits).
    /// Two calls a while apart give the values recorded in between by subtraction.
    pub fn histogram(&self, series: Series) -> Histogram<u64> {
        self.series[series.index()].merged()
    }

    /// Percentiles over everything recorded so far.
    pub fn percentiles(&self, series: Series) -> Percentiles {
        Percentiles::of_micros(&self.series[series.index()].merged())
    }
}

impl Percentiles {
    /// Percentiles, in seconds, of a histogram of microseconds; all zero when it is empty.
    pub fn of_micros(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let s = |v: u64| v as f64 / 1e6;
        Percentiles {
            count: h.len(),
            mean: h.mean() / 1e6,
            p50: s(h.value_at_quantile(0.50)),
            p90: s(h.value_at_quantile(0.90)),
            p99: s(h.value_at_quantile(0.99)),
            p999: s(h.value_at_quantile(0.999)),
            max: s(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_series() {
        let stats = Stats::new();
        for ms in 1..=1000u64 {
            stats.record(Series::Duration, Duration::from_millis(ms));
        }
        let p = stats.percentiles(Series::Duration);
        assert_eq!(p.count, 1000);
        assert!((p.p50 - 0.500).abs() < 0.001, "{p:?}");
        assert!((p.p99 - 0.990).abs() < 0.001, "{p:?}");
        assert!((p.max - 1.000).abs() < 0.001, "{p:?}");
        assert_eq!(stats.percentiles(Series::Ttft), Percentiles::default());
    }

    #[test]
    fn records_from_many_threads_are_merged() {
        let stats = std::sync::Arc::new(Stats::new());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let s = stats.clone();
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        s.record(Series::ChunkGap, Duration::from_micros(250));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let p = stats.percentiles(Series::ChunkGap);
        assert_eq!(p.count, 4000);
        assert!((p.p50 - 0.000250).abs() < 1e-6);
    }

    #[test]
    fn huge_values_are_clamped_not_lost() {
        let stats = Stats::new();
        stats.record(Series::Duration, Duration::from_secs(10 * 3600));
        assert_eq!(stats.percentiles(Series::Duration).count, 1);
    }
}
