//! The trend statistics of a window: Sen's slope with its confidence interval and the
//! Mann–Kendall test, corrected for autocorrelation (Hamed & Rao 1998).
//!
//! Given points `(t_i, v_i)` in time order (the troughs of a window), [`trend_stats`]
//! computes, in O(n²) time and with no allocation once the scratch has grown:
//!
//! - **Sen's slope**: the median of the N' = n(n−1)/2 pairwise slopes `(v_j − v_i)/(t_j − t_i)`;
//!   the intercept is the median of `v_i − slope·t_i`.
//! - **Mann–Kendall S** = Σ_{i<j} sign(v_j − v_i), with the tie-corrected null variance
//!   `Var₀(S) = [n(n−1)(2n+5) − Σ_g t_g(t_g−1)(2t_g+5)] / 18` (t_g = size of tie group g).
//! - **Hamed–Rao correction**: detrend with Sen's slope, rank the residuals (average ranks for
//!   ties), take the rank autocorrelation ρ_k at every lag k = 1…n−3 and keep the lags with
//!   |ρ_k| > 1.96/√n (the 5 % band). Then
//!   `n/n* = 1 + 2/(n(n−1)(n−2)) · Σ_k (n−k)(n−k−1)(n−k−2) ρ_k` and `Var(S) = Var₀(S) · n/n*`.
//!   The factor is floored at 1: negative autocorrelation never makes the test more confident
//!   than the independent case (a deliberate, conservative departure from the paper).
//! - **z and p**: `z = (S − sign S)/√Var(S)` (continuity correction; 0 when Var(S) = 0),
//!   two-sided `p = erfc(|z|/√2)`.
//! - **Confidence interval of the slope** (Sen 1968; Gilbert 1987, §16.5), inverted from the
//!   same corrected variance: `C = z_{1−α/2}·√Var(S)`, `M1 = (N' − C)/2`, `M2 = (N' + C)/2`;
//!   the bounds are the M1-th and (M2+1)-th smallest pairwise slopes, interpolated linearly
//!   between order statistics for fractional ranks. When `M1 < 1` the lower bound is −∞ (and
//!   `M2 + 1 > N'` makes the upper one +∞): too few points for that confidence.
//!
//! The normal distribution functions are closed-form approximations: `erfc` with a fractional
//! error under 1.2·10⁻⁷ (the Chebyshev fit of *Numerical Recipes*), the quantile by Acklam's
//! rational approximation (relative error under 1.2·10⁻⁹).

/// Result of [`trend_stats`]. Slopes are in value units per time unit of the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendStats {
    /// Sen's slope (median pairwise slope).
    pub slope: f64,
    /// Median of `v − slope·t`: the line's value at t = 0.
    pub intercept: f64,
    /// Lower confidence bound of the slope; −∞ when the points are too few.
    pub slope_lo: f64,
    /// Upper confidence bound of the slope; +∞ when the points are too few.
    pub slope_hi: f64,
    /// Mann–Kendall S.
    pub s: i64,
    /// Var(S) after the Hamed–Rao correction.
    pub var_s: f64,
    /// The Hamed–Rao factor n/n* applied to Var₀(S) (≥ 1).
    pub var_factor: f64,
    /// Standard normal score of S.
    pub z: f64,
    /// Two-sided p-value of "no monotonic trend".
    pub p: f64,
    /// Coefficient of determination of the Sen line over the points, clamped to [0, 1].
    pub r2: f64,
    /// Points used.
    pub n: usize,
}

/// Reused buffers: after the first call with n points, later calls with at most n points
/// allocate nothing.
#[derive(Debug, Default)]
pub struct StatScratch {
    pairs: Vec<f64>,
    work: Vec<f64>,
    order: Vec<usize>,
    ranks: Vec<f64>,
}

impl StatScratch {
    /// Scratch sized for up to `n` points.
    pub fn with_capacity(n: usize) -> Self {
        StatScratch {
            pairs: Vec::with_capacity(n * n.saturating_sub(1) / 2),
            work: Vec::with_capacity(n),
            order: Vec::with_capacity(n),
            ranks: Vec::with_capacity(n),
        }
    }

    /// Bytes held by the buffers.
    pub fn heap_bytes(&self) -> usize {
        (self.pairs.capacity() + self.work.capacity() + self.ranks.capacity())
            * std::mem::size_of::<f64>()
            + self.order.capacity() * std::mem::size_of::<usize>()
    }
}

/// Significance level of the autocorrelation lags kept by the Hamed–Rao correction (two-sided
/// 5 %: |ρ_k| > 1.96/√n).
const ACF_Z: f64 = 1.959_963_984_540_054;

/// Sen's slope, its confidence interval at normal quantile `z_conf` (1.96 for 95 %) and the
/// autocorrelation-corrected Mann–Kendall test over `(t, v)`, which must be in strictly
/// increasing time order with finite values. `None` with fewer than 3 points.
pub fn trend_stats(t: &[f64], v: &[f64], z_conf: f64, sc: &mut StatScratch) -> Option<TrendStats> {
    let n = t.len().min(v.len());
    if n < 3 {
        return None;
    }
    let (t, v) = (&t[..n], &v[..n]);
    // Pairwise slopes and S, written through plain slices (this loop is O(n²)).
    let n_pairs = n * (n - 1) / 2;
    sc.pairs.clear();
    sc.pairs.resize(n_pairs, 0.0);
    let pairs = &mut sc.pairs[..];
    let mut s: i64 = 0;
    let mut np = 0;
    for i in 0..n {
        let (ti, vi) = (t[i], v[i]);
        for j in i + 1..n {
            let dv = v[j] - vi;
            if dv > 0.0 {
                s += 1;
            } else if dv < 0.0 {
                s -= 1;
            }
            let dt = t[j] - ti;
            if dt > 0.0 {
                pairs[np] = dv / dt;
                np += 1;
            }
        }
    }
    sc.pairs.truncate(np);
    if np == 0 {
        return None;
    }
    let slope = order_stat(&mut sc.pairs, (np as f64 + 1.0) / 2.0);
    sc.work.clear();
    sc.work
        .extend(t.iter().zip(v).map(|(&ti, &vi)| vi - slope * ti));
    let intercept = order_stat(&mut sc.work, (n as f64 + 1.0) / 2.0);

    let var0 = mk_variance(v, &mut sc.work);
    let var_factor = hamed_rao_factor(t, v, slope, sc);
    let var_s = var0 * var_factor;
    let z = if var_s > 0.0 {
        (s - s.signum()) as f64 / var_s.sqrt()
    } else {
        0.0
    };
    let p = erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0);

    let c = z_conf * var_s.sqrt();
    let npf = np as f64;
    let m1 = (npf - c) / 2.0;
    let m2 = (npf + c) / 2.0;
    // The median selection left the mid+1 smallest slopes in [..=mid] and the rest after, so
    // the lower bound (rank ≤ n'/2) is selected in [..=mid] and the upper one (rank ≥ mid+1)
    // in [mid..].
    let mid = (np - 1) / 2;
    let slope_lo = if m1 >= 1.0 {
        order_stat(&mut sc.pairs[..=mid], m1)
    } else {
        f64::NEG_INFINITY
    };
    let slope_hi = if m2 + 1.0 <= npf {
        order_stat(&mut sc.pairs[mid..], m2 + 1.0 - mid as f64)
    } else {
        f64::INFINITY
    };

    let mean = v.iter().sum::<f64>() / n as f64;
    let (mut ss_res, mut ss_tot) = (0.0, 0.0);
    for (&ti, &vi) in t.iter().zip(v) {
        let e = vi - (intercept + slope * ti);
        ss_res += e * e;
        ss_tot += (vi - mean) * (vi - mean);
    }
    let r2 = if ss_tot > 0.0 {
        (1.0 - ss_res / ss_tot).clamp(0.0, 1.0)
    } else if ss_res == 0.0 {
        1.0
    } else {
        0.0
    };
    Some(TrendStats {
        slope,
        intercept,
        slope_lo,
        slope_hi,
        s,
        var_s,
        var_factor,
        z,
        p,
        r2,
        n,
    })
}

/// Tie-corrected Var₀(S); `work` is clobbered.
fn mk_variance(v: &[f64], work: &mut Vec<f64>) -> f64 {
    let n = v.len() as f64;
    work.clear();
    work.extend_from_slice(v);
    work.sort_unstable_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < work.len() {
        let mut j = i + 1;
        while j < work.len() && work[j] == work[i] {
            j += 1;
        }
        let g = (j - i) as f64;
        if g > 1.0 {
            ties += g * (g - 1.0) * (2.0 * g + 5.0);
        }
        i = j;
    }
    ((n * (n - 1.0) * (2.0 * n + 5.0) - ties) / 18.0).max(0.0)
}

/// Hamed–Rao n/n* for the residuals of `v` about the line of `slope`, floored at 1.
fn hamed_rao_factor(t: &[f64], v: &[f64], slope: f64, sc: &mut StatScratch) -> f64 {
    let n = v.len();
    sc.work.clear();
    sc.work
        .extend(t.iter().zip(v).map(|(&ti, &vi)| vi - slope * ti));
    average_ranks(&sc.work, &mut sc.order, &mut sc.ranks);
    let mean = (n as f64 + 1.0) / 2.0;
    // Centre the ranks in place; plain loops, this is O(n²).
    let r = &mut sc.ranks[..];
    let mut denom = 0.0;
    for x in r.iter_mut() {
        *x -= mean;
        denom += *x * *x;
    }
    let r = &*r;
    if denom <= 0.0 || n < 4 {
        return 1.0;
    }
    let band = ACF_Z / (n as f64).sqrt();
    let nf = n as f64;
    let mut sum = 0.0;
    for k in 1..=n - 3 {
        let mut num = 0.0;
        for i in 0..n - k {
            num += r[i] * r[i + k];
        }
        let rho = num / denom;
        if rho.abs() > band {
            let m = (n - k) as f64;
            sum += m * (m - 1.0) * (m - 2.0) * rho;
        }
    }
    let factor = 1.0 + 2.0 * sum / (nf * (nf - 1.0) * (nf - 2.0));
    if factor.is_finite() {
        factor.max(1.0)
    } else {
        1.0
    }
}

/// 1-based ranks of `x`, ties given their average rank.
fn average_ranks(x: &[f64], order: &mut Vec<usize>, ranks: &mut Vec<f64>) {
    let n = x.len();
    order.clear();
    order.extend(0..n);
    order.sort_unstable_by(|&a, &b| x[a].total_cmp(&x[b]));
    ranks.clear();
    ranks.resize(n, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && x[order[j]] == x[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share ranks i+1..=j.
        let avg = (i + 1 + j) as f64 / 2.0;
        for &o in &order[i..j] {
            ranks[o] = avg;
        }
        i = j;
    }
}

/// The order statistic of 1-based fractional rank `r` (clamped to [1, len]), interpolated
/// linearly between neighbours; reorders `xs`. `xs` must not be empty or hold NaN.
pub fn order_stat(xs: &mut [f64], r: f64) -> f64 {
    let n = xs.len();
    let r = r.clamp(1.0, n as f64);
    let lo = r.floor() as usize;
    let frac = r - lo as f64;
    let i = lo - 1;
    select(xs, i);
    let a = xs[i];
    if frac > 0.0 && i + 1 < n {
        let mut b = f64::INFINITY;
        for &x in &xs[i + 1..] {
            if x < b {
                b = x;
            }
        }
        a + frac * (b - a)
    } else {
        a
    }
}

/// Quickselect: puts the `k`-th smallest (0-based) at `k`, smaller-or-equal values before it
/// and greater-or-equal after. Optimised builds use the standard library's introselect; debug
/// builds (where the test suite runs thousands of fits) a Hoare partition around a median of
/// three with plain loops, about ten times faster there, which hands over to the standard
/// library after 64 rounds so the worst case stays O(n log n). Either way the k-th value is
/// the same, and so is every [`order_stat`].
fn select(xs: &mut [f64], k: usize) {
    if !cfg!(debug_assertions) {
        // Optimised builds: the standard library's introselect is the faster one there.
        xs.select_nth_unstable_by(k, f64::total_cmp);
        return;
    }
    let (mut lo, mut hi) = (0, xs.len() - 1);
    let mut rounds = 0;
    while lo < hi {
        rounds += 1;
        if rounds > 64 {
            xs[lo..=hi].select_nth_unstable_by(k - lo, f64::total_cmp);
            return;
        }
        let (a, b, c) = (xs[lo], xs[lo + (hi - lo) / 2], xs[hi]);
        let pivot = if a < b {
            if b < c {
                b
            } else if a < c {
                c
            } else {
                a
            }
        } else if a < c {
            a
        } else if b < c {
            c
        } else {
            b
        };
        let (mut i, mut j) = (lo, hi);
        let split = loop {
            while xs[i] < pivot {
                i += 1;
            }
            while xs[j] > pivot {
                j -= 1;
            }
            if i >= j {
                break j;
            }
            // By hand: `slice::swap` is a call per element in debug builds, where the
            // test suite runs this thousands of times.
            #[allow(clippy::manual_swap)]
            {
                let tmp = xs[i];
                xs[i] = xs[j];
                xs[j] = tmp;
            }
            i += 1;
            j -= 1;
        };
        // xs[lo..=split] ≤ pivot ≤ xs[split+1..=hi], and lo ≤ split < hi.
        if k <= split {
            hi = split;
        } else {
            lo = split + 1;
        }
    }
}

/// The `f`-quantile of `xs` (0 ≤ f ≤ 1, linear interpolation between order statistics, as
/// R's type 7); reorders `xs`, which must not be empty.
pub fn quantile(xs: &mut [f64], f: f64) -> f64 {
    let n = xs.len() as f64;
    order_stat(xs, f.clamp(0.0, 1.0) * (n - 1.0) + 1.0)
}

/// Complementary error function, fractional error < 1.2·10⁻⁷.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal quantile for `p` in (0, 1) (Acklam); ±∞ at 0 and 1, NaN outside.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(t: &[f64], v: &[f64]) -> TrendStats {
        trend_stats(t, v, 1.959_963_984_540_054, &mut StatScratch::default()).unwrap()
    }

    #[test]
    fn normal_functions_match_tables() {
        // Reference values from standard normal tables.
        for (x, cdf) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746),
            (1.959_963_985, 0.975),
            (-2.326_347_874, 0.01),
            (3.090_232_306, 0.999),
        ] {
            assert!((normal_cdf(x) - cdf).abs() < 2e-7, "cdf({x})");
        }
        for (p, q) in [
            (0.5, 0.0),
            (0.975, 1.959_963_985),
            (0.95, 1.644_853_627),
            (0.01, -2.326_347_874),
            (0.999, 3.090_232_306),
            (1e-6, -4.753_424_309),
        ] {
            assert!((normal_quantile(p) - q).abs() < 1e-7, "quantile({p})");
        }
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert!(normal_quantile(1.5).is_nan());
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-7);
    }

    #[test]
    fn order_stat_interpolates() {
        let mut xs = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(order_stat(&mut xs, 1.0), 1.0);
        assert_eq!(order_stat(&mut xs, 3.0), 3.0);
        assert_eq!(order_stat(&mut xs, 2.5), 2.5);
        assert_eq!(order_stat(&mut xs, 4.25), 4.25);
        assert_eq!(order_stat(&mut xs, 0.2), 1.0, "clamped");
        assert_eq!(order_stat(&mut xs, 9.0), 5.0, "clamped");
        let mut even = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(order_stat(&mut even, 2.5), 2.5, "median of an even count");
    }

    #[test]
    fn select_matches_sorting_with_duplicates() {
        let mut rng = crate::monitor::synth::SplitMix64::new(11);
        for len in [1usize, 2, 3, 5, 16, 101, 1000] {
            for distinct in [1u64, 3, 1_000_000] {
                let xs: Vec<f64> = (0..len)
                    .map(|_| (rng.next_u64() % distinct) as f64)
                    .collect();
                let mut sorted = xs.clone();
                sorted.sort_by(f64::total_cmp);
                for k in [0, len / 3, len / 2, len - 1] {
                    let mut ys = xs.clone();
                    select(&mut ys, k);
                    assert_eq!(ys[k], sorted[k], "len {len} distinct {distinct} k {k}");
                    assert!(
                        ys[..k].iter().all(|&y| y <= ys[k]) && ys[k..].iter().all(|&y| y >= ys[k])
                    );
                }
            }
        }
        // Already sorted and reversed inputs.
        let mut up: Vec<f64> = (0..500).map(f64::from).collect();
        select(&mut up, 123);
        assert_eq!(up[123], 123.0);
        let mut down: Vec<f64> = (0..500).rev().map(f64::from).collect();
        select(&mut down, 7);
        assert_eq!(down[7], 7.0);
    }

    #[test]
    fn perfect_line_hand_checked() {
        // n = 10, strictly increasing: S = 45, Var₀ = 10·9·25/18 = 125, no ties.
        let t: Vec<f64> = (0..10).map(f64::from).collect();
        let v: Vec<f64> = t.iter().map(|x| 3.0 + 2.0 * x).collect();
        let s = stats(&t, &v);
        assert_eq!(s.slope, 2.0);
        assert_eq!(s.intercept, 3.0);
        assert_eq!(s.s, 45);
        assert_eq!(s.r2, 1.0);
        // Residuals all 0: ranks tied, no autocorrelation, factor 1.
        assert_eq!(s.var_factor, 1.0);
        assert!((s.var_s - 125.0).abs() < 1e-9);
        assert!((s.z - 44.0 / 125f64.sqrt()).abs() < 1e-12);
        assert!(s.p < 1e-4);
        // Every pairwise slope is 2, so the interval collapses onto it.
        assert_eq!((s.slope_lo, s.slope_hi), (2.0, 2.0));
    }

    #[test]
    fn interval_ranks_follow_gilbert() {
        // n = 6, v = [0, 3, 1, 4, 2, 5] at t = 0..5: N' = 15, Var₀ = 6·5·17/18 = 28.33,
        // C = 1.96·5.323 = 10.43, M1 = 2.28, M2 = 12.72 → the bounds are the 2.28-th and
        // 13.72-th smallest of the 15 slopes.
        let t: Vec<f64> = (0..6).map(f64::from).collect();
        let v = [0.0, 3.0, 1.0, 4.0, 2.0, 5.0];
        let mut slopes = Vec::new();
        for i in 0..6 {
            for j in i + 1..6 {
                slopes.push((v[j] - v[i]) / (t[j] - t[i]));
            }
        }
        slopes.sort_by(f64::total_cmp);
        let s = stats(&t, &v);
        let c = 1.959_963_984_540_054 * (28.333_333_333_333_33_f64 * s.var_factor).sqrt();
        let m1 = (15.0 - c) / 2.0;
        let at = |r: f64| {
            let i = r.floor() as usize;
            slopes[i - 1] + (r - i as f64) * (slopes[i] - slopes[i - 1])
        };
        assert!(
            (s.slope_lo - at(m1)).abs() < 1e-12,
            "{} vs {}",
            s.slope_lo,
            at(m1)
        );
        assert!(s.slope_lo < s.slope && s.slope < s.slope_hi);
        // S by hand: from 0: +5; from 3: +2 −2; from 1: +3; from 4: +1 −1; from 2: +1.
        assert_eq!(s.s, 9);
    }

    #[test]
    fn too_few_points_give_an_unbounded_interval() {
        // n = 4: N' = 6, Var₀ = 4·3·13/18 = 8.67, C = 5.77, M1 = 0.11 < 1.
        let s = stats(&[0.0, 1.0, 2.0, 3.0], &[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(s.slope, 1.0);
        assert_eq!(s.slope_lo, f64::NEG_INFINITY);
        assert_eq!(s.slope_hi, f64::INFINITY);
        assert!(trend_stats(&[0.0, 1.0], &[0.0, 1.0], 1.96, &mut StatScratch::default()).is_none());
    }

    #[test]
    fn ties_reduce_the_variance() {
        // All equal: S = 0, Var₀ = 0, slope 0 and a degenerate interval at 0.
        let t: Vec<f64> = (0..8).map(f64::from).collect();
        let s = stats(&t, &[7.0; 8]);
        assert_eq!((s.s, s.var_s, s.z, s.p), (0, 0.0, 0.0, 1.0));
        assert_eq!((s.slope, s.slope_lo, s.slope_hi), (0.0, 0.0, 0.0));
        // Two tie groups of 3 in 8 points: Var₀ = (8·7·21 − 2·3·2·11)/18 = (1176 − 132)/18.
        let v = [1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 4.0];
        let mut w = Vec::new();
        assert!((mk_variance(&v, &mut w) - 1044.0 / 18.0).abs() < 1e-12);
    }

    #[test]
    fn average_ranks_share_ties() {
        let (mut o, mut r) = (Vec::new(), Vec::new());
        average_ranks(&[10.0, 30.0, 20.0, 30.0, 5.0], &mut o, &mut r);
        assert_eq!(r, [2.0, 4.5, 3.0, 4.5, 1.0]);
    }

    #[test]
    fn hamed_rao_inflates_for_autocorrelated_residuals() {
        // A random walk about a trend: residuals strongly autocorrelated at short lags, so
        // the variance grows, against alternating residuals of the same size (floored at 1).
        let n = 60;
        let t: Vec<f64> = (0..n).map(f64::from).collect();
        let mut walk = 0.0;
        let wave: Vec<f64> = t
            .iter()
            .map(|x| {
                walk += ((*x as i64 * 7919 % 101) as f64 / 101.0 - 0.5) * 2.0;
                0.1 * x + walk
            })
            .collect();
        // Alternating residuals: strong negative lag-1 correlation, floored at 1.
        let alt: Vec<f64> = t
            .iter()
            .map(|x| 0.1 * x + if (*x as i64) % 2 == 0 { 3.0 } else { -3.0 })
            .collect();
        let a = stats(&t, &wave);
        let b = stats(&t, &alt);
        assert!(a.var_factor > 2.0, "{}", a.var_factor);
        assert_eq!(b.var_factor, 1.0);
        let var0 = 60.0 * 59.0 * 125.0 / 18.0;
        assert!((a.var_s - var0 * a.var_factor).abs() < 1e-6);
        assert!((b.var_s - var0).abs() < 1e-6);
    }

    #[test]
    fn mann_kendall_rejects_noise_and_finds_trends() {
        // Deterministic pseudo-noise: no trend gives p well above 0.05; a trend 3× the
        // noise over the span gives p < 0.01 and a lower bound above 0.
        let n = 40;
        let t: Vec<f64> = (0..n).map(f64::from).collect();
        let noise: Vec<f64> = (0..n)
            .map(|i| ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 2.0)
            .collect();
        let flat = stats(&t, &noise);
        assert!(flat.p > 0.05, "{flat:?}");
        assert!(flat.slope_lo < 0.0 && flat.slope_hi > 0.0);
        let v: Vec<f64> = t.iter().zip(&noise).map(|(x, e)| 0.15 * x + e).collect();
        let up = stats(&t, &v);
        assert!(up.p < 0.01 && up.slope_lo > 0.0, "{up:?}");
        assert!((up.slope - 0.15).abs() < 0.03, "{}", up.slope);
    }
}
