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
