//! The attribution regression: a low quantile of RSS against cumulative per-scenario request
//! counts, with a free intercept and non-negative coefficients, plus approximate standard
//! errors.
//!
//! Model: `rss_i ≈ a + Σ_s b_s · n_{i,s}`, `b_s ≥ 0`, fitted by minimising the check loss
//! `Σ ρ_τ(r_i)` with `ρ_τ(r) = τ·r` for `r ≥ 0` and `(τ − 1)·r` for `r < 0` ([`TAU`]): the
//! fitted surface leaves a fraction τ of the points below it, so it follows the lower envelope
//! (a GC sawtooth's troughs) rather than the middle of the saw, and a point's pull does not
//! grow with its distance (an outlier of 500 MiB counts as much as one of 1 MiB). The check
//! loss is minimised by iteratively reweighted non-negative least squares
//! ([`IRLS_ITERATIONS`] at most; weights `τ/|r|` above and `(1−τ)/|r|` below the surface,
//! `|r|` floored at [`EPS_START`] and then ever smaller fractions of the first fit's median
//! absolute residual), and the best iterate by check loss is kept. On exact data the
//! coefficients come out within 1e-6 relative of the truth.
//!
//! Standard errors are the textbook ones of quantile regression with independent errors:
//! `se_s = σ̂ · √[(X̃ᵀX̃)⁻¹]_ss`, `X̃` the centred count matrix, `σ̂ = √(τ(1−τ)) · ŝ` with the
//! sparsity `ŝ = (q(τ + h) − q(τ)) / h` estimated from the final residuals' quantiles
//! (`h` = [`SPARSITY_H`]; one-sided, so low outliers under the surface do not inflate it).
//! Residuals of a sawtooth are not independent, so these are a yardstick for the publishing
//! rule, not a confidence interval.

use super::nnls::{cholesky, cholesky_solve, nnls_gram, Workspace};

/// Quantile of the fit: the surface leaves 5 % of the points below it, and at least
/// [`MIN_BELOW`] (see the module docs of [`super`] for how it was chosen).
pub const TAU: f64 = 0.05;
/// Fewest points the surface leaves below it, so that a few low outliers take those places
/// rather than pull the surface down: the quantile is `max(TAU, MIN_BELOW / points)`.
pub const MIN_BELOW: f64 = 3.0;
/// Most reweighting rounds.
pub const IRLS_ITERATIONS: usize = 60;
/// First residual floor of the reweighting, relative to the first fit's median absolute
/// residual; each time the loss stops falling the floor shrinks 100-fold, down to
/// [`EPS_REL`].
pub const EPS_START: f64 = 1e-2;
/// Last residual floor of the reweighting.
pub const EPS_REL: f64 = 1e-8;
/// Half-width of the quantile difference that estimates the residual sparsity.
pub const SPARSITY_H: f64 = 0.1;
/// Pivot tolerance (relative) of the centred count matrix: below it the design is collinear.
pub const COLLINEAR_TOL: f64 = 1e-9;

/// One fitted surface.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantileFit {
    /// RSS at zero counts (relative to the first point's counts).
    pub intercept: f64,
    /// Bytes per request, one per column.
    pub coef: Vec<f64>,
    /// Approximate standard error per column; `None` when the design is collinear.
    pub std_error: Option<Vec<f64>>,
}

/// Reused buffers of [`quantile_nnls`].
#[derive(Debug, Default)]
pub struct FitScratch {
    w: Vec<f64>,
    r: Vec<f64>,
    tmp: Vec<f64>,
    mean: Vec<f64>,
    scale: Vec<f64>,
    g: Vec<f64>,
    h: Vec<f64>,
    beta: Vec<f64>,
    best: Vec<f64>,
    nnls: Workspace,
}

impl FitScratch {
    /// Buffers for `n` points and `k` columns.
    pub fn with_capacity(n: usize, k: usize) -> Self {
        FitScratch {
            w: Vec::with_capacity(n),
            r: Vec::with_capacity(n),
            tmp: Vec::with_capacity(n),
            mean: Vec::with_capacity(k),
            scale: Vec::with_capacity(k),
            g: Vec::with_capacity(k * k),
            h: Vec::with_capacity(k),
            beta: Vec::with_capacity(k),
            best: Vec::with_capacity(k + 1),
            nnls: Workspace::with_capacity(k),
        }
    }
}

/// Check loss of residual `r` at quantile `tau`.
fn check(r: f64, tau: f64) -> f64 {
    if r >= 0.0 {
        tau * r
    } else {
        (tau - 1.0) * r
    }
}

/// Fits `y ≈ a + X b`, `b ≥ 0`, at quantile `tau`. `x` is `n × k` row-major (`n = y.len()`).
/// Columns that never change get coefficient 0.
pub fn quantile_nnls(y: &[f64], x: &[f64], k: usize, tau: f64, s: &mut FitScratch) -> QuantileFit {
    let n = y.len();
    s.w.clear();
    s.w.resize(n, 1.0);
    let mut coef = vec![0.0; k];
    let mut a = weighted_nnls(y, x, k, s, &mut coef);
    residuals(y, x, k, a, &coef, &mut s.r);
    s.tmp.clear();
    s.tmp.extend(s.r.iter().map(|r| r.abs()));
    let scale = median(&mut s.tmp).max(f64::MIN_POSITIVE);
    let (mut eps, floor) = (scale * EPS_START, scale * EPS_REL);
    let mut best_loss: f64 = s.r.iter().map(|&r| check(r, tau)).sum();
    s.best.clear();
    s.best.push(a);
    s.best.extend_from_slice(&coef);
    for _ in 0..IRLS_ITERATIONS {
        for (w, &r) in s.w.iter_mut().zip(&s.r) {
            let side = if r >= 0.0 { tau } else { 1.0 - tau };
            *w = side / r.abs().max(eps);
        }
        a = weighted_nnls(y, x, k, s, &mut coef);
        residuals(y, x, k, a, &coef, &mut s.r);
        let loss: f64 = s.r.iter().map(|&r| check(r, tau)).sum();
        let improved = loss < best_loss * (1.0 - 1e-10);
        if loss < best_loss {
            best_loss = loss;
            s.best.clear();
            s.best.push(a);
            s.best.extend_from_slice(&coef);
        }
        if !improved {
            if eps <= floor {
                break;
            }
            // Converged for this smoothing: sharpen it and go on from the best iterate.
            eps = (eps * 0.01).max(floor);
            residuals(y, x, k, s.best[0], &s.best[1..], &mut s.r);
        }
    }
    let intercept = s.best[0];
    coef.copy_from_slice(&s.best[1..]);
    residuals(y, x, k, intercept, &coef, &mut s.r);
    let std_error = std_errors(x, k, tau, s);
    QuantileFit {
        intercept,
        coef,
        std_error,
    }
}

fn residuals(y: &[f64], x: &[f64], k: usize, a: f64, b: &[f64], r: &mut Vec<f64>) {
    r.clear();
    r.extend(y.iter().enumerate().map(|(i, &yi)| {
        let row = &x[i * k..(i + 1) * k];
        yi - a - row.iter().zip(b).map(|(xv, bv)| xv * bv).sum::<f64>()
    }));
}

/// Weighted least squares with a free intercept and `b ≥ 0` (weights in `s.w`); writes `b`
/// and returns the intercept. Columns are centred and scaled to unit weighted norm first.
fn weighted_nnls(y: &[f64], x: &[f64], k: usize, s: &mut FitScratch, b: &mut [f64]) -> f64 {
    let n = y.len();
    let wsum: f64 = s.w.iter().sum();
    let ybar = y.iter().zip(&s.w).map(|(v, w)| v * w).sum::<f64>() / wsum;
    s.mean.clear();
    s.scale.clear();
    for j in 0..k {
        let m = (0..n).map(|i| x[i * k + j] * s.w[i]).sum::<f64>() / wsum;
        s.mean.push(m);
        let ss: f64 = (0..n).map(|i| s.w[i] * (x[i * k + j] - m).powi(2)).sum();
        s.scale.push(ss.sqrt());
    }
    s.g.clear();
    s.g.resize(k * k, 0.0);
    s.h.clear();
    s.h.resize(k, 0.0);
    for i in 0..n {
        let w = s.w[i];
        let yc = y[i] - ybar;
        for p in 0..k {
            if s.scale[p] == 0.0 {
                continue;
            }
            let xp = (x[i * k + p] - s.mean[p]) / s.scale[p];
            s.h[p] += w * xp * yc;
            for q in p..k {
                if s.scale[q] == 0.0 {
                    continue;
                }
                let xq = (x[i * k + q] - s.mean[q]) / s.scale[q];
                s.g[p * k + q] += w * xp * xq;
            }
        }
    }
    for p in 0..k {
        for q in 0..p {
            s.g[p * k + q] = s.g[q * k + p];
        }
    }
    s.beta.clear();
    s.beta.resize(k, 0.0);
    nnls_gram(&s.g, &s.h, k, &mut s.beta, &mut s.nnls);
    let mut a = ybar;
    for (j, bj) in b.iter_mut().enumerate().take(k) {
        *bj = if s.scale[j] > 0.0 {
            s.beta[j] / s.scale[j]
        } else {
            0.0
        };
        a -= s.mean[j] * *bj;
    }
    a
}

/// `σ̂ · √[(X̃ᵀX̃)⁻¹]_jj` per column, from the residuals in `s.r` (see the module docs);
/// `None` when a column is (nearly) a combination of the others, or never changes.
fn std_errors(x: &[f64], k: usize, tau: f64, s: &mut FitScratch) -> Option<Vec<f64>> {
    let n = s.r.len();
    s.tmp.clear();
    s.tmp.extend_from_slice(&s.r);
    s.tmp.sort_unstable_by(|a, b| a.total_cmp(b));
    let q = |p: f64| s.tmp[((p * n as f64).floor() as usize).min(n - 1)];
    let (lo, hi) = (tau, tau + SPARSITY_H);
    let sparsity = (q(hi) - q(lo)) / (hi - lo);
    let sigma = (tau * (1.0 - tau)).sqrt() * sparsity;
    s.mean.clear();
    s.scale.clear();
    for j in 0..k {
        let m = (0..n).map(|i| x[i * k + j]).sum::<f64>() / n as f64;
        s.mean.push(m);
        let ss: f64 = (0..n).map(|i| (x[i * k + j] - m).powi(2)).sum();
        if ss <= 0.0 {
            return None;
        }
        s.scale.push(ss.sqrt());
    }
    s.g.clear();
    s.g.resize(k * k, 0.0);
    for i in 0..n {
        for p in 0..k {
            let xp = (x[i * k + p] - s.mean[p]) / s.scale[p];
            for q in 0..k {
                s.g[p * k + q] += xp * (x[i * k + q] - s.mean[q]) / s.scale[q];
            }
        }
    }
    if !cholesky(&mut s.g, k, COLLINEAR_TOL) {
        return None;
    }
    let mut out = Vec::with_capacity(k);
    for j in 0..k {
        // Column j of the inverse, entry j.
        s.h.clear();
        s.h.resize(k, 0.0);
        s.h[j] = 1.0;
        cholesky_solve(&s.g, k, &mut s.h);
        out.push(sigma * s.h[j].max(0.0).sqrt() / s.scale[j]);
    }
    Some(out)
}

/// Median, reordering `xs`; 0 for an empty slice.
pub fn median(xs: &mut [f64]) -> f64 {
    let n = xs.len();
    if n == 0 {
        return 0.0;
    }
    let (_, hi, _) = xs.select_nth_unstable_by(n / 2, |a, b| a.total_cmp(b));
    let hi = *hi;
    if n % 2 == 1 {
        return hi;
    }
    let lo = xs[..n / 2]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_data_is_fitted_exactly_at_any_quantile() {
        let n = 40;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let t = f64::from(i);
            let (a, b) = (t * 10.0 + (t * 0.9).sin() * 30.0, t * 7.0);
            x.extend([a, b]);
            y.push(1000.0 + 3.0 * a + 0.5 * b);
        }
        for tau in [0.1, 0.2, 0.5] {
            let f = quantile_nnls(&y, &x, 2, tau, &mut FitScratch::default());
            assert!((f.coef[0] - 3.0).abs() < 1e-6, "{tau}: {f:?}");
            assert!((f.coef[1] - 0.5).abs() < 1e-6, "{tau}: {f:?}");
            assert!((f.intercept - 1000.0).abs() < 1e-3, "{tau}: {f:?}");
            let se = f.std_error.unwrap();
            assert!(se.iter().all(|v| *v < 1e-6), "{se:?}");
        }
    }

    #[test]
    fn the_low_quantile_follows_the_floor_and_ignores_spikes() {
        // Floor 2 per unit of x; every third point sits 100 above the floor, one point 1e6.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..60 {
            let v = f64::from(i);
            x.push(v);
            let lift = if i % 3 == 0 { 100.0 } else { 0.0 };
            y.push(2.0 * v + lift + if i == 30 { 1e6 } else { 0.0 });
        }
        let f = quantile_nnls(&y, &x, 1, TAU, &mut FitScratch::default());
        assert!((f.coef[0] - 2.0).abs() < 1e-6, "{f:?}");
        assert!(f.intercept.abs() < 1e-3, "{f:?}");
    }

    #[test]
    fn collinear_columns_have_no_standard_error() {
        let x: Vec<f64> = (0..30)
            .flat_map(|i| [f64::from(i), 2.0 * f64::from(i)])
            .collect();
        let y: Vec<f64> = (0..30).map(|i| 5.0 * f64::from(i)).collect();
        let f = quantile_nnls(&y, &x, 2, TAU, &mut FitScratch::default());
        assert!(f.std_error.is_none());
        // The total is still right: 1·b0 + 2·b1 = 5.
        assert!((f.coef[0] + 2.0 * f.coef[1] - 5.0).abs() < 1e-6, "{f:?}");
    }

    #[test]
    fn median_even_odd_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
