//! What a growth window takes in: one sample of every resource with the load signals beside
//! it ([`Point`]), and what it gives back besides its fits ([`LoadOverWindow`]). The windows
//! themselves are [`super::trend::TrendWindow`]s. (The previous estimator, Theil–Sen over a
//! bucketed lower envelope, was replaced by the period-aware trough fit; its measured
//! comparison is in BENCHMARKS.md, section 7, and in the docs of [`super::trend`].)

/// Most buckets a window holds.
pub const MAX_BUCKETS: usize = 120;

/// Number of resources sampled (rss, fds, threads), indexed by `Resource::index()`.
pub const N_RES: usize = 3;

/// One sample as the window sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Point {
    /// Seconds since the monitor started.
    pub t: f64,
    /// rss, fds, threads; `None` when unreadable this sample.
    pub values: [Option<f64>; N_RES],
    /// `LoadSignals::requests_finished` at this sample.
    pub requests: u64,
    /// `LoadSignals::streams_open` at this sample.
    pub streams: f64,
}

/// Load over a window, from the same buckets as the fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadOverWindow {
    /// Finished requests per second.
    pub request_rate: f64,
    /// Mean streams open.
    pub avg_streams: f64,
}

/// A fixed time grid of a window: buckets of `width` seconds counted from `origin` (the
/// window's first sample), spanning `span` seconds, at most `cap` buckets. Shared by the growth
/// windows ([`super::trend::TrendWindow`]) and the attribution windows.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    /// Bucket width, seconds.
    pub width: f64,
    /// Window span, seconds.
    pub span: f64,
    /// Most buckets held.
    pub cap: usize,
}

impl Grid {
    /// The grid of a window of `span` seconds sampled every `interval` seconds: at most
    /// [`MAX_BUCKETS`] buckets of at least one interval, two more held while one closes.
    pub fn new(span: f64, interval: f64) -> Self {
        let width = (span / MAX_BUCKETS as f64).max(interval);
        Grid {
            width,
            span,
            cap: (span / width).ceil() as usize + 2,
        }
    }

    /// The index of the bucket holding time `t`.
    pub fn index(&self, origin: f64, t: f64) -> u64 {
        ((t - origin).max(0.0) / self.width).floor() as u64
    }

    /// Drops the oldest buckets (index by `idx`) that start before `now − span` or exceed
    /// the cap.
    pub fn evict<B>(
        &self,
        buckets: &mut std::collections::VecDeque<B>,
        idx: impl Fn(&B) -> u64,
        origin: f64,
        now: f64,
    ) {
        let oldest_allowed = now - self.span;
        while let Some(front) = buckets.front() {
            let start = origin + idx(front) as f64 * self.width;
            if start < oldest_allowed || buckets.len() > self.cap {
                buckets.pop_front();
            } else {
                break;
            }
        }
    }
}
