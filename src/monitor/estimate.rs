//! Fixed-size growth windows and the robust slope fit.
//!
//! A [`WindowBuf`] cuts its window into at most [`MAX_BUCKETS`] equal time buckets and keeps
//! one point per resource per bucket: the bucket's MINIMUM and the time it was seen. Closed
//! buckets are fitted with Theil–Sen (median of pairwise slopes). Memory and the cost of one
//! fit depend only on the bucket count, never on the run length.

use std::collections::VecDeque;

use super::settings::MIN_POINTS;

/// Most buckets a window holds (the fit's point count).
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

#[derive(Debug, Clone, Copy)]
struct Bucket {
    idx: u64,
    t_first: f64,
    t_last: f64,
    /// (time of the minimum, minimum) per resource.
    min: [Option<(f64, f64)>; N_RES],
    req_first: u64,
    req_last: u64,
    streams_sum: f64,
    n: u32,
}

/// A fitted line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Slope, units per second.
    pub slope: f64,
    /// Intercept at t = 0.
    pub intercept: f64,
    /// Coefficient of determination against the lower-envelope points of the final fit,
    /// clamped to [0, 1].
    pub r2: f64,
    /// Bucket points the window fitted.
    pub points: usize,
}

/// Load over a window, from the same buckets as the fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadOverWindow {
    /// Finished requests per second.
    pub request_rate: f64,
    /// Mean streams open.
    pub avg_streams: f64,
}

/// One growth window of one process.
#[derive(Debug)]
pub struct WindowBuf {
    span: f64,
    width: f64,
    origin: Option<f64>,
    buckets: VecDeque<Bucket>,
    cap: usize,
    fits: [Option<Fit>; N_RES],
    /// Time of the first and last point of each fit.
    spans: [Option<(f64, f64)>; N_RES],
    load: Option<LoadOverWindow>,
    scratch: Scratch,
}

/// Reused buffers so a fit allocates nothing after the first.
#[derive(Debug, Default)]
struct Scratch {
    t: Vec<f64>,
    v: Vec<f64>,
    et: Vec<f64>,
    ev: Vec<f64>,
    ft: Vec<f64>,
    fv: Vec<f64>,
    pairs: Vec<f64>,
}

impl Scratch {
    fn with_capacity(n: usize) -> Self {
        let v = || Vec::with_capacity(n);
        Scratch {
            t: v(),
            v: v(),
            et: v(),
            ev: v(),
            ft: v(),
            fv: v(),
            pairs: Vec::with_capacity(n * n.saturating_sub(1) / 2),
        }
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        [
            &self.t,
            &self.v,
            &self.et,
            &self.ev,
            &self.ft,
            &self.fv,
            &self.pairs,
        ]
        .iter()
        .map(|v| v.capacity())
        .sum()
    }
}

impl WindowBuf {
    /// A window of `span` seconds sampled every `interval` seconds.
    pub fn new(span: f64, interval: f64) -> Self {
        let width = (span / MAX_BUCKETS as f64).max(interval);
        let cap = (span / width).ceil() as usize + 2;
        WindowBuf {
            span,
            width,
            origin: None,
            buckets: VecDeque::with_capacity(cap),
            cap,
            fits: [None; N_RES],
            spans: [None; N_RES],
            load: None,
            scratch: Scratch::with_capacity(cap),
        }
    }

    /// Bucket width in seconds.
    pub fn bucket_width(&self) -> f64 {
        self.width
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
        self.cap
    }

    /// Forgets everything (restart).
    pub fn clear(&mut self) {
        self.origin = None;
        self.buckets.clear();
        self.fits = [None; N_RES];
        self.spans = [None; N_RES];
        self.load = None;
    }

    /// Adds a sample. Returns true when a bucket closed and the fits were recomputed.
    pub fn push(&mut self, p: &Point) -> bool {
        let origin = *self.origin.get_or_insert(p.t);
        let idx = ((p.t - origin).max(0.0) / self.width).floor() as u64;
        let mut closed = false;
        match self.buckets.back_mut() {
            Some(b) if b.idx == idx => {
                b.t_last = p.t;
                b.req_last = p.requests;
                b.streams_sum += p.streams;
                b.n += 1;
                for (slot, v) in b.min.iter_mut().zip(p.values) {
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
                    min: p.values.map(|v| v.map(|v| (p.t, v))),
                    req_first: p.requests,
                    req_last: p.requests,
                    streams_sum: p.streams,
                    n: 1,
                });
            }
        }
        // Evict buckets that start before the window (relative to the newest sample).
        let oldest_allowed = p.t - self.span;
        while let Some(front) = self.buckets.front() {
            let start = origin + front.idx as f64 * self.width;
            if start < oldest_allowed || self.buckets.len() > self.cap {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
        if closed {
            self.refit();
        }
        closed
    }

    fn closed(&self) -> impl Iterator<Item = &Bucket> {
        let n = self.buckets.len().saturating_sub(1);
        self.buckets.iter().take(n)
    }

    fn refit(&mut self) {
        let span_needed = self.span * 0.5;
        for r in 0..N_RES {
            self.scratch.t.clear();
            self.scratch.v.clear();
            let n = self.buckets.len().saturating_sub(1);
            for b in self.buckets.iter().take(n) {
                if let Some((t, v)) = b.min[r] {
                    self.scratch.t.push(t);
                    self.scratch.v.push(v);
                }
            }
            let enough = self.scratch.t.len() >= MIN_POINTS
                && match (self.scratch.t.first(), self.scratch.t.last()) {
                    (Some(a), Some(b)) => b - a >= span_needed - self.width,
                    _ => false,
                };
            self.spans[r] = match (self.scratch.t.first(), self.scratch.t.last()) {
                (Some(a), Some(b)) if enough => Some((*a, *b)),
                _ => None,
            };
            self.fits[r] = if enough {
                let (t, v) = (
                    std::mem::take(&mut self.scratch.t),
                    std::mem::take(&mut self.scratch.v),
                );
                let fit = fit_envelope(&t, &v, &mut self.scratch);
                self.scratch.t = t;
                self.scratch.v = v;
                fit
            } else {
                None
            };
        }
        self.load = self.compute_load();
    }

    fn compute_load(&self) -> Option<LoadOverWindow> {
        let first = self.closed().next()?;
        let last = self.closed().last()?;
        let dt = last.t_last - first.t_first;
        if dt <= 0.0 {
            return None;
        }
        let (sum, n) = self
            .closed()
            .fold((0.0, 0u32), |(s, n), b| (s + b.streams_sum, n + b.n));
        Some(LoadOverWindow {
            request_rate: last.req_last.saturating_sub(first.req_first) as f64 / dt,
            avg_streams: if n > 0 { sum / n as f64 } else { 0.0 },
        })
    }

    /// The latest fit of resource `r`, if the window holds enough data.
    pub fn fit(&self, r: usize) -> Option<Fit> {
        self.fits[r]
    }

    /// Times of the first and last point of the latest fit of resource `r`.
    pub fn fit_span(&self, r: usize) -> Option<(f64, f64)> {
        self.fits[r].and(self.spans[r])
    }

    /// Load over the fitted buckets.
    pub fn load(&self) -> Option<LoadOverWindow> {
        self.load
    }
}

/// Fraction of the fitted span two points must be apart for their slope to count: close
/// pairs mostly measure a sawtooth's ramp, not the trend.
pub const MIN_SEPARATION: f64 = 0.25;

/// Lower-envelope refits after the first fit (each keeps the points on or under the line).
pub const ENVELOPE_ITERATIONS: usize = 2;

/// Fits the lower envelope of `(t, v)`: Theil–Sen, then [`ENVELOPE_ITERATIONS`] times refit
/// on the points on or below the line, stopping before fewer than [`MIN_POINTS`] remain. R²
/// refers to the final (envelope) point set, `points` to all the points given.
fn fit_envelope(t: &[f64], v: &[f64], s: &mut Scratch) -> Option<Fit> {
    let mut fit = theil_sen(t, v, &mut s.pairs)?;
    s.et.clear();
    s.ev.clear();
    s.et.extend_from_slice(t);
    s.ev.extend_from_slice(v);
    for _ in 0..ENVELOPE_ITERATIONS {
        s.ft.clear();
        s.fv.clear();
        for (&ti, &vi) in s.et.iter().zip(&s.ev) {
            if vi <= fit.intercept + fit.slope * ti {
                s.ft.push(ti);
                s.fv.push(vi);
            }
        }
        if s.ft.len() < MIN_POINTS {
            break;
        }
        fit = theil_sen(&s.ft, &s.fv, &mut s.pairs)?;
        std::mem::swap(&mut s.et, &mut s.ft);
        std::mem::swap(&mut s.ev, &mut s.fv);
    }
    fit.points = t.len();
    Some(fit)
}

/// Theil–Sen line through `(t, v)`; `None` with fewer than two distinct times.
pub fn theil_sen(t: &[f64], v: &[f64], pairs: &mut Vec<f64>) -> Option<Fit> {
    theil_sen_sep(t, v, pairs, MIN_SEPARATION)
}

/// Theil–Sen over the pairs at least `sep` × the time span apart.
pub fn theil_sen_sep(t: &[f64], v: &[f64], pairs: &mut Vec<f64>, sep: f64) -> Option<Fit> {
    let n = t.len().min(v.len());
    if n < 2 {
        return None;
    }
    let min_dt = (t[n - 1] - t[0]) * sep;
    pairs.clear();
    for i in 0..n {
        for j in i + 1..n {
            let dt = t[j] - t[i];
            if dt != 0.0 && dt >= min_dt {
                pairs.push((v[j] - v[i]) / dt);
            }
        }
    }
    let slope = median(pairs)?;
    pairs.clear();
    pairs.extend((0..n).map(|i| v[i] - slope * t[i]));
    let intercept = median(pairs)?;
    let mean = v[..n].iter().sum::<f64>() / n as f64;
    let (mut ss_res, mut ss_tot) = (0.0, 0.0);
    for i in 0..n {
        let e = v[i] - (intercept + slope * t[i]);
        ss_res += e * e;
        ss_tot += (v[i] - mean) * (v[i] - mean);
    }
    let r2 = if ss_tot > 0.0 {
        (1.0 - ss_res / ss_tot).clamp(0.0, 1.0)
    } else if ss_res == 0.0 {
        1.0
    } else {
        0.0
    };
    Some(Fit {
        slope,
        intercept,
        r2,
        points: n,
    })
}

/// Median, reordering `xs` in place.
fn median(xs: &mut [f64]) -> Option<f64> {
    let n = xs.len();
    if n == 0 {
        return None;
    }
    let cmp = |a: &f64, b: &f64| a.total_cmp(b);
    let (_, hi, _) = xs.select_nth_unstable_by(n / 2, cmp);
    let hi = *hi;
    if n % 2 == 1 {
        return Some(hi);
    }
    let lo = xs[..n / 2]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    Some((lo + hi) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const MIB: f64 = 1024.0 * 1024.0;

    /// Feeds `f(t)` sampled every `interval` s for `duration` s into a window of `span` s.
    fn run(span: f64, interval: f64, duration: f64, mut f: impl FnMut(f64) -> f64) -> WindowBuf {
        let mut w = WindowBuf::new(span, interval);
        let n = (duration / interval) as usize;
        for i in 0..n {
            let t = i as f64 * interval;
            w.push(&Point {
                t,
                values: [Some(f(t)), Some(10.0), None],
                requests: (t * 50.0) as u64,
                streams: 4.0,
            });
        }
        w
    }

    /// GC-like sawtooth: climbs `amp` over `period` s then drops back.
    fn saw(t: f64, period: f64, amp: f64) -> f64 {
        (t % period) / period * amp
    }

    /// Relative slope error and R² for a 20 MiB/h leak under a 30 MiB sawtooth of `period`
    /// seconds and ±2 MiB uniform noise: 30 min window (15 s buckets), 1 s samples, 1 h run.
    fn leak_case(period: f64, seed: u64) -> (f64, f64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let leak = 20.0 * MIB / 3600.0;
        let w = run(1800.0, 1.0, 3600.0, |t| {
            200.0 * MIB + leak * t + saw(t, period, 30.0 * MIB) + rng.random_range(-2.0..2.0) * MIB
        });
        let fit = w.fit(0).unwrap();
        ((fit.slope - leak) / leak, fit.r2)
    }

    #[test]
    fn leak_with_fast_sawtooth_and_noise_is_within_5_percent() {
        // Period 7 s < bucket 15 s: bucket minima are the troughs.
        for seed in 0..5 {
            let (err, r2) = leak_case(7.0, seed);
            assert!(err.abs() < 0.05, "seed {seed}: err {err}");
            assert!(r2 > 0.95, "seed {seed}: r2 {r2}");
        }
    }

    #[test]
    fn leak_with_slow_sawtooth_is_within_5_percent() {
        // Period 120 s = 8 buckets: the minima follow the saw; the separated pairs and the
        // lower-envelope refits recover the trend.
        for seed in 0..5 {
            let (err, _) = leak_case(120.0, seed);
            assert!(err.abs() < 0.05, "seed {seed}: err {err}");
        }
        // Period 300 s = 20 buckets, six periods per window: within 15 %.
        for seed in 0..5 {
            let (err, _) = leak_case(300.0, seed);
            assert!(err.abs() < 0.15, "seed {seed}: err {err}");
        }
    }

    #[test]
    fn flat_sawtooth_has_near_zero_slope() {
        let mut rng = StdRng::seed_from_u64(3);
        for period in [7.0, 30.0, 120.0, 300.0] {
            let w = run(1800.0, 1.0, 3600.0, |t| {
                300.0 * MIB + saw(t, period, 40.0 * MIB) + rng.random_range(-2.0..2.0) * MIB
            });
            let fit = w.fit(0).unwrap();
            // Far under the 50 MiB/h threshold against 40 MiB of sawtooth.
            assert!(
                fit.slope.abs() * 3600.0 < 5.0 * MIB,
                "period {period}: {} MiB/h",
                fit.slope * 3600.0 / MIB
            );
        }
    }

    /// Prints the error table the module docs quote:
    /// `cargo test --lib monitor::estimate -- --ignored --nocapture sawtooth_table`.
    #[test]
    #[ignore]
    fn sawtooth_table() {
        for period in [7.0, 30.0, 60.0, 120.0, 300.0, 600.0] {
            let row: Vec<String> = (0..5)
                .map(|seed| {
                    let (e, r2) = leak_case(period, seed);
                    format!("{:+.1}% (R² {r2:.2})", e * 100.0)
                })
                .collect();
            eprintln!("period {period:>4} s: {}", row.join("  "));
        }
    }

    #[test]
    fn single_big_outliers_do_not_move_the_slope() {
        let leak = 10.0 * MIB / 3600.0;
        let clean = run(600.0, 1.0, 900.0, |t| 100.0 * MIB + leak * t);
        let spiky = run(600.0, 1.0, 900.0, |t| {
            let base = 100.0 * MIB + leak * t;
            // Two huge dips (e.g. a bad read) and one huge spike.
            if (t - 700.0).abs() < 0.5 || (t - 820.0).abs() < 0.5 {
                base - 90.0 * MIB
            } else if (t - 760.0).abs() < 0.5 {
                base + 500.0 * MIB
            } else {
                base
            }
        });
        let a = clean.fit(0).unwrap().slope;
        let b = spiky.fit(0).unwrap().slope;
        assert!((a - leak).abs() / leak < 1e-6, "{a}");
        assert!((b - leak).abs() / leak < 0.05, "{b} vs {leak}");
    }

    #[test]
    fn too_few_samples_report_no_slope() {
        // 100 s window, 1 s samples: 40 s is under half the span.
        let w = run(100.0, 1.0, 40.0, |t| t);
        assert!(w.fit(0).is_none());
        assert!(w.fit(2).is_none(), "never-present resource has no fit");
        let w = run(100.0, 1.0, 60.0, |t| t);
        let fit = w.fit(0).unwrap();
        assert!((fit.slope - 1.0).abs() < 1e-9);
        assert!((fit.r2 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn clear_forgets_the_fit() {
        let mut w = run(100.0, 1.0, 200.0, |t| t);
        assert!(w.fit(0).is_some());
        w.clear();
        assert!(w.fit(0).is_none());
        assert!(w.is_empty());
        assert!(w.load().is_none());
    }

    #[test]
    fn memory_is_bounded_after_many_windows_of_samples() {
        // 144,000 samples fill the 2h window twenty times over (a 40 h soak at 1 s); a
        // million, as the ignored cost bench runs, takes a minute in a debug build.
        let mut w = WindowBuf::new(7200.0, 1.0);
        let scratch_before = w.scratch.capacity();
        let mut max_len = 0;
        for i in 0..144_000u64 {
            let t = i as f64;
            w.push(&Point {
                t,
                values: [Some(t), Some(1.0), Some(2.0)],
                requests: i,
                streams: 1.0,
            });
            max_len = max_len.max(w.len());
        }
        assert!(max_len <= MAX_BUCKETS + 2, "{max_len}");
        assert!(max_len <= w.capacity_bound());
        assert_eq!(w.scratch.capacity(), scratch_before, "scratch buffers grew");
        let fit = w.fit(0).unwrap();
        assert!((fit.slope - 1.0).abs() < 1e-9);
        let load = w.load().unwrap();
        assert!((load.request_rate - 1.0).abs() < 1e-3, "{load:?}");
    }

    #[test]
    fn load_is_measured_over_the_window() {
        let w = run(100.0, 1.0, 300.0, |t| t);
        let load = w.load().unwrap();
        assert!((load.request_rate - 50.0).abs() < 1.0, "{load:?}");
        assert_eq!(load.avg_streams, 4.0);
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    /// Estimator cost per sample, early (first 1e3 samples) and late (after 1e6), for the
    /// default windows 5m/30m/2h at 1 s samples, plus one worst-case fit of full buckets:
    /// `cargo test --release --lib monitor::estimate::tests::bench -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_estimator_cost_per_sample() {
        let mut ws: Vec<WindowBuf> = [300.0, 1800.0, 7200.0]
            .iter()
            .map(|&span| WindowBuf::new(span, 1.0))
            .collect();
        let mut i = 0u64;
        let mut measure = |n: u64, ws: &mut [WindowBuf]| {
            let start = std::time::Instant::now();
            for _ in 0..n {
                let t = i as f64;
                let p = Point {
                    t,
                    values: [Some(t + (i % 7) as f64), Some(1.0), Some(2.0)],
                    requests: i,
                    streams: 1.0,
                };
                for w in ws.iter_mut() {
                    w.push(&p);
                }
                i += 1;
            }
            start.elapsed().as_secs_f64() / n as f64
        };
        let early = measure(1_000, &mut ws);
        let _ = measure(998_000, &mut ws);
        let late = measure(1_000, &mut ws);
        let start = std::time::Instant::now();
        let reps = 100;
        for _ in 0..reps {
            ws[2].refit();
        }
        let fit = start.elapsed().as_secs_f64() / reps as f64;
        eprintln!(
            "estimator per sample (3 windows x 3 resources): first 1e3: {:.2} µs, \
             after 1e6: {:.2} µs; one full refit (120 buckets x 3 resources): {:.0} µs; \
             buckets held {:?}",
            early * 1e6,
            late * 1e6,
            fit * 1e6,
            ws.iter().map(|w| w.len()).collect::<Vec<_>>()
        );
    }
}
