//! Period-aware growth windows: fixed-memory buckets, GC-period detection, trough fitting
//! and a trend test per resource. The verdict built on these fits is in [`super::judge`].
//!
//! # Buckets
//! A [`TrendWindow`] of span `S` cuts time into equal
//! buckets of width `w = max(S / 120, sample interval)` and keeps at most `S/w + 2` of them;
//! each bucket holds per resource its MINIMUM and when it was seen, and the load signals
//! (requests finished at its first and last sample, sum of open streams and sample count), so
//! [`TrendWindow::load`] gives the request rate and mean open streams over the same buckets
//! as the fit, as today. A bucket closes when a sample lands in a later one; only closed
//! buckets are fitted, and only resources that ever had a value.
//!
//! # Period and troughs
//! Beside the buckets a window keeps a [`PeriodRing`] (512 slot minima per resource, covering
//! at least the span) and detects the dominant sawtooth period `P` from the spacing of large
//! drops (rules in [`super::period`]), again every 16 ring slots (1/32 of the ring). In a
//! [`TrendSet`] a window that finds no period of its own borrows the one found by the
//! shortest longer window that has one (a window shorter than two GC cycles cannot see the
//! cycle; a longer window can), and an irregular period (rule 7) yields to a regular one of
//! a shorter window with drops as large (the same GC seen through a coarser ring). Fds take
//! at least the load's own cycle when the plan has one and the window holds at least
//! [`MIN_FIT_POINTS`] of them ([`TrendSet::with_load_period`]: the burst period, or
//! looping stages): what a burst opens closes over the following seconds, and troughs one
//! load cycle apart compare like with like where bucket minima (or a short period the
//! decays' steps suggest) would read the first bursts' step and the decays as growth. The fit
//! points are then the minima of groups of `k`
//! consecutive buckets, `k = ⌈(P + slot) / w⌉` (one ring slot of margin for the slot
//! quantisation of `P`); groups are aligned backwards from the newest closed bucket and an
//! oldest group reaching before the first bucket held is dropped. A group at least one period
//! wide holds a sample within one sample interval after a drop, so its minimum is a trough; an
//! estimate a little short of the true period still misses the trough by at most the
//! amplitude × the relative error. With no period, `k = 1`: the points are the bucket minima,
//! the same points the previous estimator fitted (its slopes agreed within 3 % on a noisy
//! leak, checked before it was removed).
//!
//! The sampling phase sets a floor on trough precision: the lowest sample of a cycle lies up
//! to one interval after the drop, so each trough carries up to `amplitude × interval /
//! period` of jitter (1.3 MiB for 32 MiB / 120 s at 5 s; 0.27 MiB at 1 s). Small leaks under
//! a fast, large sawtooth need 1 s samples.
//!
//! # Fit and test
//! Over the trough points ([`super::mann_kendall`]): Sen's slope and intercept, R² (a
//! diagnostic only), Mann–Kendall S/z/p with the Hamed–Rao variance correction, and the
//! slope's confidence interval at [`TrendSet`]'s confidence (default 95 %) inverted from that
//! corrected variance; the same for the newer half of the points (`recent_*`, for the
//! plateau check of the verdict). Sen's slope tolerates up to 29 % arbitrary outliers and MK
//! is a rank test, so a few wild reads move neither. The old estimator's pair separation and
//! lower-envelope refits are gone: the group minima already are the lower envelope, one point
//! per cycle, and refitting a residual-selected subset would make the interval too narrow.
//! `growth` = slope × the time between the first and the last point.
//!
//! Hamed–Rao rather than a block bootstrap: it is deterministic, O(n²) like the rest of the fit
//! and allocation-free, and on troughs it is nearly idle — measured mean factors 1.00–1.06
//! (`benches/leak_matrix`, coverage table) — because one point per GC cycle leaves little
//! autocorrelation; where residuals do wander (a bucket-minimum series tracing a sawtooth it
//! did not detect) it widens the interval. Measured coverage of the 95 % interval, 200 seeds
//! per case: the truth fell outside it 4–15 times in 200 (nominal 10), e.g. 8 of 200 in a
//! 30 min window over a 16 MiB/h leak with an 8 MiB / 30 s sawtooth, 15 of 200 in a 5 min
//! window without one.
//!
//! # The old sawtooth table, measured again
//! 20 MiB/h + a 30 MiB sawtooth + Gaussian noise of sd 1.15 MiB, 1 s samples, seeds 0–4, each
//! window run for twice its span (`tests::sawtooth_table` asserts these bounds):
//!
//! | period | window | old `WindowBuf` (R²) | new | new troughs | 95 % interval holds truth |
//! |---|---|---|---|---|---|
//! | 7 s | 30 min | −3.2 … +9.8 % (0.97) | −4.6 … +4.0 % | 120 | 5/5 |
//! | 30 s | 30 min | −4.0 … +2.4 % (0.94) | −4.3 … +2.0 % | 40 | 5/5 |
//! | 60 s | 30 min | −8.2 … +6.6 % (0.94) | −4.0 … +12.2 % | 24 | 5/5 |
//! | 120 s | 30 min | −7.3 … +5.4 % (0.68) | −12.3 … +4.6 % | 13 | 4/5 |
//! | 300 s | 30 min | −3.1 … +31.1 % (0.69) | no fit (unknown) | < 6 | — |
//! | 600 s | 30 min | +9.7 … +37.7 % (0.72) | no fit (unknown) | < 6 | — |
//! | 300 s | 2 h | −1.2 … +3.1 % (0.96) | +0.0 … +3.2 % | 20 | 4/5 |
//! | 600 s | 2 h | −0.8 … +1.9 % (0.97) | −1.1 … +1.2 % | 10 | 5/5 |
//!
//! The new fit trades a few percent of scatter at 60–120 s periods (13–24 troughs instead of
//! 120 bucket minima) for an interval that means what it says, and it refuses windows holding
//! fewer than six cycles instead of reading them 10–38 % high.
//!
//! # Limits and cost
//! A window has a fit only when its closed buckets cover at least half its span and give at
//! least [`MIN_FIT_POINTS`] trough points; otherwise `fit()` is `None` (unknown, never a
//! guess). A lone window shorter than two GC cycles, with no longer window to borrow the period
//! from, still fits bucket minima that climb the sawtooth: windows should span several GC
//! periods (`tests::a_short_window_borrows_the_period_of_a_longer_one`).
//!
//! Memory per window is fixed from the first sample: 21 KiB (122 buckets of 128 bytes and the
//! 6 KiB ring); the fit scratch (94 KiB) is shared by all windows of a [`TrendSet`]: 158 KiB
//! per process for the default 5m/30m/2h against 235 KiB for three `WindowBuf`s. A refit
//! costs O(n²) in the points (n ≤ 120) and runs only when a bucket closes: about 250 µs for
//! 3 resources × 120 points in the worst case against 140 µs for `WindowBuf`; per sample at
//! 1 s with 5m/30m/2h, 123 µs without a sawtooth (old 106 µs) and 63 µs with one (old
//! 104 µs), release build, shared 2-core VM (BENCHMARKS.md, "Leak detection").

use std::collections::VecDeque;

use super::estimate::{Grid, LoadOverWindow, Point, MAX_BUCKETS, N_RES};
use super::mann_kendall::{normal_quantile, trend_stats, StatScratch};
use super::period::{Period, PeriodRing, PeriodScratch};
use super::Resource;

/// Fewest trough points for a fit. With 6 points a 95 % interval is bounded (M1 ≈ 2.3 of 15
/// slopes); with 4 it is not.
pub const MIN_FIT_POINTS: usize = 6;

/// A window re-detects its period when its ring has moved on by this many slots (1/32 of
/// the ring): the period changes slowly, and a detection scans the whole ring.
pub const DETECT_EVERY_SLOTS: u64 = super::period::RING_SLOTS as u64 / 32;

/// Default two-sided confidence of the slope interval.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;

/// A window's fit of one resource. Slopes are units per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendFit {
    /// Sen's slope of the troughs.
    pub slope: f64,
    /// The line's value at t = 0.
    pub intercept: f64,
    /// Lower confidence bound of the slope (−∞ when unbounded).
    pub slope_lo: f64,
    /// Upper confidence bound of the slope (+∞ when unbounded).
    pub slope_hi: f64,
    /// R² of the line over the troughs (diagnostic).
    pub r2: f64,
    /// Trough points fitted.
    pub points: usize,
    /// Mann–Kendall z (autocorrelation-corrected).
    pub mk_z: f64,
    /// Two-sided Mann–Kendall p-value.
    pub mk_p: f64,
    /// Hamed–Rao variance factor applied (≥ 1).
    pub var_factor: f64,
    /// The sawtooth period the troughs were cut by, seconds (own or borrowed).
    pub period: Option<f64>,
    /// Width of one trough group, seconds.
    pub trough_width: f64,
    /// Time of the first point, seconds (the monitor's time base).
    pub from: f64,
    /// Seconds between the first and the last point.
    pub span: f64,
    /// Fitted growth over `span`: slope × span.
    pub growth: f64,
    /// Sen's slope of the newer half of the points (the newest ⌈n/2⌉).
    pub recent_slope: f64,
    /// Lower confidence bound of that slope (−∞ when unbounded).
    pub recent_lo: f64,
    /// Upper confidence bound of that slope (+∞ when unbounded).
    pub recent_hi: f64,
}

/// Why a window has no fit of a resource, as of its last refit: what the verdict and the
/// progress line say instead of a slope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoFit {
    /// No closed bucket of the resource yet (the warm-up, or the first bucket still open).
    NoData,
    /// The closed buckets cover `held` seconds, under half the window's `span`.
    Filling {
        /// Seconds the closed buckets cover.
        held: f64,
        /// The window's span, seconds.
        span: f64,
    },
    /// Half the span is held but it gives fewer than [`MIN_FIT_POINTS`] trough points:
    /// `points`, cut one per `period` (a sawtooth, or the load's cycle for fds) when there is
    /// one.
    FewTroughs {
        /// Trough points the window gives.
        points: usize,
        /// The period the troughs were cut by, seconds.
        period: Option<f64>,
    },
}

impl TrendFit {
    /// Slope per hour.
    pub fn per_hour(&self) -> f64 {
        self.slope * 3600.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    idx: u64,
    t_first: f64,
    t_last: f64,
    min: [Option<(f64, f64)>; N_RES],
    req_first: u64,
    req_last: u64,
    streams_sum: f64,
    n: u32,
}

/// Buffers shared by the fits of a [`TrendSet`]'s windows.
#[derive(Debug, Default)]
pub struct FitScratch {
    stats: StatScratch,
    period: PeriodScratch,
    t: Vec<f64>,
    v: Vec<f64>,
}

impl FitScratch {
    /// Scratch for fits of up to [`MAX_BUCKETS`] + 2 points.
    pub fn new() -> Self {
        let n = MAX_BUCKETS + 2;
        FitScratch {
            stats: StatScratch::with_capacity(n),
            period: PeriodScratch::with_capacity(super::period::RING_SLOTS),
            t: Vec::with_capacity(n),
            v: Vec::with_capacity(n),
        }
    }

    /// Bytes held by the buffers.
    pub fn heap_bytes(&self) -> usize {
        self.stats.heap_bytes()
            + self.period.heap_bytes()
            + (self.t.capacity() + self.v.capacity()) * std::mem::size_of::<f64>()
    }
}

/// One growth window of one process (see the module docs).
#[derive(Debug)]
pub struct TrendWindow {
    grid: Grid,
    origin: Option<f64>,
    buckets: VecDeque<Bucket>,
    ring: PeriodRing,
    own: [Option<Period>; N_RES],
    /// Resources that had a value since the last clear (the others are skipped).
    seen: [bool; N_RES],
    /// The ring's newest slot at the last detection.
    detected_at: Option<u64>,
    fits: [Option<TrendFit>; N_RES],
    /// Why `fits[r]` is `None`.
    why: [NoFit; N_RES],
    load: Option<LoadOverWindow>,
}

impl TrendWindow {
    /// A window of `span` seconds sampled every `interval` seconds.
    pub fn new(span: f64, interval: f64) -> Self {
        let grid = Grid::new(span, interval);
        TrendWindow {
            grid,
            origin: None,
            buckets: VecDeque::with_capacity(grid.cap),
            ring: PeriodRing::new(span, interval),
            own: [None; N_RES],
            seen: [false; N_RES],
            detected_at: None,
            fits: [None; N_RES],
            why: [NoFit::NoData; N_RES],
            load: None,
        }
    }

    /// Span, seconds.
    pub fn span(&self) -> f64 {
        self.grid.span
    }

    /// Bucket width, seconds.
    pub fn bucket_width(&self) -> f64 {
        self.grid.width
    }

    /// Buckets held now (closed and open).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Most buckets this window can ever hold.
    pub fn capacity_bound(&self) -> usize {
        self.grid.cap
    }

    /// Heap bytes held by this window (buckets and ring); fixed after construction.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>() + self.ring.heap_bytes()
    }

    /// Forgets everything (a restart).
    pub fn clear(&mut self) {
        self.origin = None;
        self.buckets.clear();
        self.ring.clear();
        self.own = [None; N_RES];
        self.seen = [false; N_RES];
        self.detected_at = None;
        self.fits = [None; N_RES];
        self.why = [NoFit::NoData; N_RES];
        self.load = None;
    }

    /// Seconds from the window's first sample to its newest, at most its span: how full it
    /// is. A window is full when this equals its span; until then its slope covers less time
    /// than its label says.
    pub fn covered(&self) -> f64 {
        match (self.origin, self.buckets.back()) {
            (Some(o), Some(b)) => (b.t_last - o).clamp(0.0, self.grid.span),
            _ => 0.0,
        }
    }

    /// Whether the window's samples span all of it ([`Self::covered`]).
    pub fn is_full(&self) -> bool {
        self.covered() >= self.grid.span
    }

    /// Why resource `r` has no fit (meaningful while [`Self::fit`] is `None`).
    pub fn no_fit(&self, r: usize) -> NoFit {
        self.why[r]
    }

    /// Records a sample. Returns true when a bucket closed: the caller then calls
    /// [`detect`](Self::detect) and [`refit`](Self::refit) (a [`TrendSet`] does).
    pub fn push(&mut self, p: &Point) -> bool {
        let values = p.values.map(|v| v.filter(|v| v.is_finite()));
        for (seen, v) in self.seen.iter_mut().zip(&values) {
            *seen |= v.is_some();
        }
        self.ring.push(p.t, &values);
        let origin = *self.origin.get_or_insert(p.t);
        let idx = self.grid.index(origin, p.t);
        let mut closed = false;
        match self.buckets.back_mut() {
            Some(b) if b.idx >= idx => {
                b.t_last = b.t_last.max(p.t);
                b.req_last = b.req_last.max(p.requests);
                b.streams_sum += p.streams;
                b.n += 1;
                for (slot, v) in b.min.iter_mut().zip(values) {
                    if let Some(v) = v {
                        if slot.is_none_or(|(_, m)| v < m) {
                            *slot = Some((p.t, v));
                        }
                    }
                }
            }
            _ => {
                closed = !self.buckets.is_empty();
                self.buckets.push_back(Bucket {
                    idx,
                    t_first: p.t,
                    t_last: p.t,
                    min: values.map(|v| v.map(|v| (p.t, v))),
                    req_first: p.requests,
                    req_last: p.requests,
                    streams_sum: p.streams,
                    n: 1,
                });
            }
        }
        self.grid.evict(&mut self.buckets, |b| b.idx, origin, p.t);
        closed
    }

    /// Re-detects this window's own period per resource from its ring, at most once every
    /// [`DETECT_EVERY_SLOTS`] ring slots.
    pub fn detect(&mut self, sc: &mut FitScratch) {
        let newest = self.ring.newest_slot();
        if let (Some(at), Some(now)) = (self.detected_at, newest) {
            if now < at + DETECT_EVERY_SLOTS {
                return;
            }
        }
        self.detected_at = newest;
        for r in 0..N_RES {
            self.own[r] = if self.seen[r] {
                self.ring.detect(r, &mut sc.period)
            } else {
                None
            };
        }
    }

    /// The period this window's own ring shows for resource `r` (as of the last detection).
    pub fn own_period(&self, r: usize) -> Option<Period> {
        self.own[r]
    }

    /// Refits every resource with the trough groups cut by `periods` (seconds; `None` = no
    /// sawtooth) and normal quantile `z` for the interval.
    pub fn refit(&mut self, periods: [Option<f64>; N_RES], z: f64, sc: &mut FitScratch) {
        for (r, period) in periods.into_iter().enumerate() {
            let fit = if self.seen[r] {
                self.fit_resource(r, period, z, sc)
            } else {
                Err(NoFit::NoData)
            };
            (self.fits[r], self.why[r]) = match fit {
                Ok(f) => (Some(f), NoFit::NoData),
                Err(why) => (None, why),
            };
        }
        self.load = self.compute_load();
    }

    fn fit_resource(
        &self,
        r: usize,
        period: Option<f64>,
        z: f64,
        sc: &mut FitScratch,
    ) -> Result<TrendFit, NoFit> {
        let closed = self.buckets.len().saturating_sub(1);
        if closed == 0 {
            return Err(NoFit::NoData);
        }
        let k = match period {
            Some(p) if p > 0.0 => ((p + self.ring.slot_width()) / self.grid.width)
                .ceil()
                .max(1.0) as u64,
            _ => 1,
        };
        let last_idx = self.buckets[closed - 1].idx;
        let first_idx = self.buckets[0].idx;
        sc.t.clear();
        sc.v.clear();
        let mut group: Option<u64> = None;
        let mut best: Option<(f64, f64)> = None;
        for b in self.buckets.iter().take(closed).rev() {
            let g = (last_idx - b.idx) / k;
            if group != Some(g) {
                if let Some((t, v)) = best.take() {
                    sc.t.push(t);
                    sc.v.push(v);
                }
                group = Some(g);
            }
            if let Some((t, v)) = b.min[r] {
                if best.is_none_or(|(_, m)| v < m) {
                    best = Some((t, v));
                }
            }
        }
        // The oldest group counts only when it lies wholly inside the buckets held.
        if let (Some(g), Some((t, v))) = (group, best) {
            if last_idx + 1 >= (g + 1) * k + first_idx {
                sc.t.push(t);
                sc.v.push(v);
            }
        }
        sc.t.reverse();
        sc.v.reverse();
        let n = sc.t.len();
        let group_width = k as f64 * self.grid.width;
        // Enough data: the closed buckets cover half the span (this grows monotonically, so
        // a window at the edge does not flicker between fit and no fit as groups shift).
        let held = (last_idx + 1 - first_idx) as f64 * self.grid.width;
        if held < self.grid.span * 0.5 {
            return Err(NoFit::Filling {
                held,
                span: self.grid.span,
            });
        }
        let few = NoFit::FewTroughs { points: n, period };
        if n < MIN_FIT_POINTS {
            return Err(few);
        }
        let st = trend_stats(&sc.t, &sc.v, z, &mut sc.stats).ok_or(few)?;
        let span = sc.t[n - 1] - sc.t[0];
        let recent = trend_stats(&sc.t[n / 2..], &sc.v[n / 2..], z, &mut sc.stats).ok_or(few)?;
        Ok(TrendFit {
            slope: st.slope,
            intercept: st.intercept,
            slope_lo: st.slope_lo,
            slope_hi: st.slope_hi,
            r2: st.r2,
            points: n,
            mk_z: st.z,
            mk_p: st.p,
            var_factor: st.var_factor,
            period,
            trough_width: group_width,
            from: sc.t[0],
            span,
            growth: st.slope * span,
            recent_slope: recent.slope,
            recent_lo: recent.slope_lo,
            recent_hi: recent.slope_hi,
        })
    }

    fn compute_load(&self) -> Option<LoadOverWindow> {
        let closed = self.buckets.len().saturating_sub(1);
        let first = self.buckets.front().filter(|_| closed > 0)?;
        let last = self.buckets.get(closed - 1)?;
        let dt = last.t_last - first.t_first;
        if dt <= 0.0 {
            return None;
        }
        let (sum, n) = self
            .buckets
            .iter()
            .take(closed)
            .fold((0.0, 0u32), |(s, n), b| (s + b.streams_sum, n + b.n));
        Some(LoadOverWindow {
            request_rate: last.req_last.saturating_sub(first.req_first) as f64 / dt,
            avg_streams: if n > 0 { sum / f64::from(n) } else { 0.0 },
        })
    }

    /// The latest fit of resource `r`, if the window holds enough troughs.
    pub fn fit(&self, r: usize) -> Option<TrendFit> {
        self.fits[r]
    }

    /// Load over the closed buckets.
    pub fn load(&self) -> Option<LoadOverWindow> {
        self.load
    }
}

/// The windows of one process, shortest first, with one shared fit scratch. This is what the
/// monitor keeps per process.
#[derive(Debug)]
pub struct TrendSet {
    windows: Vec<TrendWindow>,
    closed: Vec<bool>,
    z: f64,
    scratch: FitScratch,
    load_period: Option<f64>,
}

impl TrendSet {
    /// Windows of the given spans (seconds, ascending), sampled every `interval` seconds, with
    /// slope intervals at two-sided `confidence` (e.g. 0.95; clamped to [0.5, 0.9999]).
    pub fn new(spans: &[f64], interval: f64, confidence: f64) -> Self {
        debug_assert!(spans.windows(2).all(|w| w[0] < w[1]), "spans must ascend");
        let c = confidence.clamp(0.5, 0.9999);
        TrendSet {
            windows: spans
                .iter()
                .map(|&s| TrendWindow::new(s, interval))
                .collect(),
            closed: vec![false; spans.len()],
            z: normal_quantile(1.0 - (1.0 - c) / 2.0),
            scratch: FitScratch::new(),
            load_period: None,
        }
    }

    /// The period of the load's own cycle (bursts every `seconds`), the least trough width for
    /// fds in the windows that hold at least [`MIN_FIT_POINTS`] such cycles (their own
    /// period, when longer, still wins): open fds count connections one for one, follow the
    /// bursts' cycle, and their troughs are compared one cycle apart. A shorter window fits
    /// its bucket minima as before (grouped, it could never have a fit). RSS and threads keep
    /// their own period or bucket minima: RSS has its growth floor (4 MiB, 2 %) against the
    /// bursts' buffers, and threads follow connections only in a thread-per-connection
    /// server, while a fixed pool (most proxies) would lose its fit for nothing.
    pub fn with_load_period(mut self, seconds: Option<f64>) -> Self {
        self.load_period = seconds.filter(|s| s.is_finite() && *s > 0.0);
        self
    }

    /// Adds a sample to every window; refits those whose bucket closed. Returns true when any
    /// window refit.
    pub fn push(&mut self, p: &Point) -> bool {
        let mut any = false;
        for (w, closed) in self.windows.iter_mut().zip(&mut self.closed) {
            *closed = w.push(p);
            if *closed {
                w.detect(&mut self.scratch);
                any = true;
            }
        }
        for i in 0..self.windows.len() {
            if !self.closed[i] {
                continue;
            }
            let mut periods = [None; N_RES];
            for (r, slot) in periods.iter_mut().enumerate() {
                *slot = self.period_for(i, r);
            }
            self.windows[i].refit(periods, self.z, &mut self.scratch);
        }
        any
    }

    /// The period window `i` cuts its troughs of resource `r` by: the longer of the
    /// resource's own ([`Self::own_period_for`]) and, for fds, the load's cycle
    /// when the window holds [`MIN_FIT_POINTS`] of them ([`Self::with_load_period`]). A group
    /// as wide as the longer holds a trough of both cycles.
    fn period_for(&self, i: usize, r: usize) -> Option<f64> {
        let own = self.own_period_for(i, r);
        let span = self.windows[i].span();
        let load = self
            .load_period
            .filter(|p| r == Resource::Fds.index() && span >= MIN_FIT_POINTS as f64 * p);
        match (own, load) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The resource's own period in window `i`: the window's, else that of the nearest
    /// longer window that has one. An IRREGULAR period (rule 7 of [`super::period`]: a few
    /// unevenly spaced drops) yields to a regular one found by a shorter window whose drops
    /// are at least half as large: the same GC seen through a coarser ring (a 60 s sawtooth
    /// sampled every 10 s reads as a few drops 30–90 min apart in a 2 h ring of 14 s slots),
    /// not a larger cycle the shorter window cannot see.
    fn own_period_for(&self, i: usize, r: usize) -> Option<f64> {
        let found = self.windows[i..].iter().find_map(|w| w.own_period(r))?;
        if found.regular {
            return Some(found.seconds);
        }
        let finer = self.windows[..i]
            .iter()
            .rev()
            .filter_map(|w| w.own_period(r))
            .find(|q| q.regular && q.drop_size * 2.0 >= found.drop_size);
        Some(finer.unwrap_or(found).seconds)
    }

    /// The windows, shortest first.
    pub fn windows(&self) -> &[TrendWindow] {
        &self.windows
    }

    /// The fit of resource `r` in window `w`.
    pub fn fit(&self, w: usize, r: usize) -> Option<TrendFit> {
        self.windows.get(w).and_then(|x| x.fit(r))
    }

    /// Why window `w` has no fit of resource `r` (while [`Self::fit`] is `None`).
    pub fn no_fit(&self, w: usize, r: usize) -> NoFit {
        self.windows.get(w).map_or(NoFit::NoData, |x| x.no_fit(r))
    }

    /// The normal quantile used for the intervals.
    pub fn z(&self) -> f64 {
        self.z
    }

    /// Forgets everything (a restart).
    pub fn clear(&mut self) {
        for w in &mut self.windows {
            w.clear();
        }
    }

    /// Heap bytes: every window plus the shared scratch.
    pub fn heap_bytes(&self) -> usize {
        self.windows
            .iter()
            .map(TrendWindow::heap_bytes)
            .sum::<usize>()
            + self.scratch.heap_bytes()
    }
}

#[cfg(test)]
#[path = "trend_tests.rs"]
mod tests;
