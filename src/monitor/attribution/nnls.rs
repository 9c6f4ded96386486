//! Small dense linear algebra for the attribution fit: a Cholesky solve and non-negative
//! least squares in Gram form.
//!
//! [`nnls_gram`] minimises `½ bᵀGb − hᵀb` subject to `b ≥ 0`, which is least squares
//! `‖y − Xb‖²` with `G = XᵀX`, `h = Xᵀy`, by the Lawson–Hanson active-set method: start from
//! `b = 0`, move the coordinate with the largest positive gradient into the free set, solve the
//! unconstrained problem on the free set, and when a free coordinate would turn negative step
//! back to the boundary and release it. It terminates in a finite number of steps (at most a
//! few times the dimension here) with the exact constrained minimiser. Matrices are row-major
//! `k × k` slices; `k` is at most [`super::MAX_SCENARIOS`], so everything is tiny and the
//! buffers come from a reused [`Workspace`].

/// Reused buffers (sized once for the largest `k`).
#[derive(Debug, Default)]
pub struct Workspace {
    a: Vec<f64>,
    rhs: Vec<f64>,
    z: Vec<f64>,
    grad: Vec<f64>,
    free: Vec<bool>,
    idx: Vec<usize>,
}

impl Workspace {
    /// Buffers for problems of up to `k` unknowns.
    pub fn with_capacity(k: usize) -> Self {
        Workspace {
            a: Vec::with_capacity(k * k),
            rhs: Vec::with_capacity(k),
            z: Vec::with_capacity(k),
            grad: Vec::with_capacity(k),
            free: Vec::with_capacity(k),
            idx: Vec::with_capacity(k),
        }
    }
}

/// Cholesky factorisation of the SPD `m × m` matrix `a` in place (lower triangle). Returns
/// false when a pivot is not positive relative to its diagonal entry (`rel_tol`): the
/// matrix is singular or nearly so.
pub fn cholesky(a: &mut [f64], m: usize, rel_tol: f64) -> bool {
    for j in 0..m {
        let diag0 = a[j * m + j];
        let mut d = diag0;
        for p in 0..j {
            d -= a[j * m + p] * a[j * m + p];
        }
        if d.is_nan() || d <= rel_tol * diag0.abs() || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * m + j] = d;
        for i in j + 1..m {
            let mut s = a[i * m + j];
            for p in 0..j {
                s -= a[i * m + p] * a[j * m + p];
            }
            a[i * m + j] = s / d;
        }
    }
    true
}

/// Solves `LLᵀx = b` in place with the factor from [`cholesky`].
pub fn cholesky_solve(l: &[f64], m: usize, b: &mut [f64]) {
    for i in 0..m {
        let mut s = b[i];
        for p in 0..i {
            s -= l[i * m + p] * b[p];
        }
        b[i] = s / l[i * m + i];
    }
    for i in (0..m).rev() {
        let mut s = b[i];
        for p in i + 1..m {
            s -= l[p * m + i] * b[p];
        }
        b[i] = s / l[i * m + i];
    }
}

/// Relative pivot tolerance: a free set whose Gram block is this close to singular is not
/// solved (the coordinate that made it so stays at 0).
const PIVOT_TOL: f64 = 1e-12;

/// Non-negative least squares in Gram form: writes the minimiser of `½ bᵀGb − hᵀb`, `b ≥ 0`,
/// into `b` (`g` is `k × k` row-major, symmetric positive semi-definite). Columns should be
/// scaled to comparable norms (the caller scales them to unit norm); `tol` is the gradient
/// below which a coordinate is considered optimal at 0.
pub fn nnls_gram(g: &[f64], h: &[f64], k: usize, b: &mut [f64], ws: &mut Workspace) {
    let tol = 1e-10 * h.iter().fold(1e-300_f64, |m, v| m.max(v.abs()));
    b[..k].fill(0.0);
    ws.free.clear();
    ws.free.resize(k, false);
    // Coordinates whose Gram block would be singular: never freed again this solve.
    let mut blocked = 0u64;
    for _outer in 0..(3 * k + 3) {
        ws.grad.clear();
        for i in 0..k {
            let gb: f64 = (0..k).map(|j| g[i * k + j] * b[j]).sum();
            ws.grad.push(h[i] - gb);
        }
        let best = (0..k)
            .filter(|&i| !ws.free[i] && blocked & (1 << i) == 0)
            .max_by(|&x, &y| ws.grad[x].total_cmp(&ws.grad[y]));
        let Some(j) = best.filter(|&j| ws.grad[j] > tol) else {
            return;
        };
        ws.free[j] = true;
        for _inner in 0..(3 * k + 3) {
            if !solve_free(g, h, k, ws) {
                ws.free[j] = false;
                blocked |= 1 << j;
                break;
            }
            let all_positive = ws.idx.iter().zip(&ws.z).all(|(_, &z)| z > 0.0);
            if all_positive {
                for (&i, &z) in ws.idx.iter().zip(&ws.z) {
                    b[i] = z;
                }
                break;
            }
            // Step from b towards z until the first free coordinate reaches 0.
            let (mut alpha, mut hit) = (1.0_f64, usize::MAX);
            for (&i, &z) in ws.idx.iter().zip(&ws.z) {
                if z <= 0.0 {
                    let step = b[i] / (b[i] - z);
                    if step < alpha {
                        (alpha, hit) = (step, i);
                    }
                }
            }
            for (&i, &z) in ws.idx.iter().zip(&ws.z) {
                b[i] += alpha * (z - b[i]);
                if i == hit || b[i] <= 0.0 {
                    b[i] = 0.0;
                    ws.free[i] = false;
                }
            }
            if !ws.free.iter().any(|&f| f) {
                break;
            }
        }
    }
}

/// Solves the unconstrained problem on the free coordinates into `ws.z` (indices in
/// `ws.idx`). False when their Gram block is singular.
fn solve_free(g: &[f64], h: &[f64], k: usize, ws: &mut Workspace) -> bool {
    ws.idx.clear();
    ws.idx.extend((0..k).filter(|&i| ws.free[i]));
    let m = ws.idx.len();
    ws.a.clear();
    ws.rhs.clear();
    for &r in &ws.idx {
        for &c in &ws.idx {
            ws.a.push(g[r * k + c]);
        }
        ws.rhs.push(h[r]);
    }
    if !cholesky(&mut ws.a, m, PIVOT_TOL) {
        return false;
    }
    cholesky_solve(&ws.a, m, &mut ws.rhs);
    ws.z.clear();
    ws.z.extend_from_slice(&ws.rhs);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gram(x: &[Vec<f64>], y: &[f64]) -> (Vec<f64>, Vec<f64>, usize) {
        let k = x[0].len();
        let mut g = vec![0.0; k * k];
        let mut h = vec![0.0; k];
        for (row, &yi) in x.iter().zip(y) {
            for i in 0..k {
                h[i] += row[i] * yi;
                for j in 0..k {
                    g[i * k + j] += row[i] * row[j];
                }
            }
        }
        (g, h, k)
    }

    #[test]
    fn unconstrained_optimum_inside_the_orthant_is_found_exactly() {
        let x: Vec<Vec<f64>> = (0..20)
            .map(|i| {
                let t = f64::from(i);
                vec![1.0, t, (t * 0.7).sin()]
            })
            .collect();
        let y: Vec<f64> = x.iter().map(|r| 2.0 + 0.5 * r[1] + 3.0 * r[2]).collect();
        let (g, h, k) = gram(&x, &y);
        let mut b = vec![0.0; k];
        nnls_gram(&g, &h, k, &mut b, &mut Workspace::with_capacity(k));
        for (got, want) in b.iter().zip([2.0, 0.5, 3.0]) {
            assert!((got - want).abs() < 1e-9, "{b:?}");
        }
    }

    #[test]
    fn a_negative_coefficient_is_clamped_and_the_rest_refit() {
        // y = t − 2·s: the constrained optimum puts 0 on s and refits t alone.
        let x: Vec<Vec<f64>> = (0..30)
            .map(|i| {
                let t = f64::from(i);
                vec![t, (t * 1.3).cos()]
            })
            .collect();
        let y: Vec<f64> = x.iter().map(|r| r[0] - 2.0 * r[1]).collect();
        let (g, h, k) = gram(&x, &y);
        let mut b = vec![0.0; k];
        nnls_gram(&g, &h, k, &mut b, &mut Workspace::with_capacity(k));
        assert_eq!(b[1], 0.0);
        let want = h[0] / g[0];
        assert!((b[0] - want).abs() < 1e-12 * want.abs(), "{b:?} vs {want}");
    }

    #[test]
    fn all_negative_gives_zero_and_collinear_columns_do_not_fail() {
        let x: Vec<Vec<f64>> = (1..10).map(|i| vec![f64::from(i); 2]).collect();
        let y: Vec<f64> = x.iter().map(|r| -r[0]).collect();
        let (g, h, k) = gram(&x, &y);
        let mut b = vec![1.0; k];
        nnls_gram(&g, &h, k, &mut b, &mut Workspace::with_capacity(k));
        assert_eq!(b, [0.0, 0.0]);
        // Two identical columns, positive target: one takes it all, the other is blocked.
        let y: Vec<f64> = x.iter().map(|r| 3.0 * r[0]).collect();
        let (g, h, k) = gram(&x, &y);
        nnls_gram(&g, &h, k, &mut b, &mut Workspace::with_capacity(k));
        assert!((b[0] + b[1] - 3.0).abs() < 1e-9, "{b:?}");
    }

    #[test]
    fn cholesky_solves_and_rejects_singular() {
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        assert!(cholesky(&mut a, 2, 1e-12));
        let mut rhs = vec![2.0, 1.0];
        cholesky_solve(&a, 2, &mut rhs);
        assert!(
            (rhs[0] - 0.5).abs() < 1e-12 && rhs[1].abs() < 1e-12,
            "{rhs:?}"
        );
        let mut s = vec![1.0, 1.0, 1.0, 1.0];
        assert!(!cholesky(&mut s, 2, 1e-12));
    }
}
