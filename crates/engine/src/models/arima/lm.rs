//! Levenberg–Marquardt for small nonlinear least-squares problems with a
//! forward-difference Jacobian. Both ARIMA objectives (conditional sum of
//! squares and the exact Gaussian likelihood written as a sum of squares of
//! scaled innovations) are least-squares problems, so Gauss–Newton steps
//! converge in a handful of iterations where a simplex search needs hundreds
//! of evaluations.

/// Minimises `Σ r_i(x)²`; `f(x, r)` fills the residuals and returns false when
/// `x` is inadmissible (treated as an infinitely bad point). Returns the best
/// point and its cost, or `None` when `x0` itself is inadmissible.
pub(crate) fn minimize<F>(
    mut f: F,
    x0: &[f64],
    nres: usize,
    max_iter: usize,
    rel_tol: f64,
) -> Option<(Vec<f64>, f64)>
where
    F: FnMut(&[f64], &mut [f64]) -> bool,
{
    let k = x0.len();
    let mut x = x0.to_vec();
    let mut r = vec![0.0; nres];
    if !f(&x, &mut r) {
        return None;
    }
    let mut cost = sum_sq(&r);
    if !cost.is_finite() {
        return None;
    }
    if k == 0 || nres == 0 {
        return Some((x, cost));
    }
    let mut jac = vec![0.0; nres * k];
    let mut rt = vec![0.0; nres];
    let mut xt = vec![0.0; k];
    let mut a = vec![0.0; k * k];
    let mut g = vec![0.0; k];
    let mut mat = vec![0.0; k * k];
    let mut delta = vec![0.0; k];
    let mut lambda = 1e-3;
    for _ in 0..max_iter {
        // Jacobian by forward differences (backward at the admissible boundary).
        for j in 0..k {
            let mut h = 1e-6 * x[j].abs().max(0.1);
            xt.copy_from_slice(&x);
            xt[j] += h;
            if !f(&xt, &mut rt) {
                h = -h;
                xt[j] = x[j] + h;
                if !f(&xt, &mut rt) {
                    rt.copy_from_slice(&r);
                }
            }
            let col = &mut jac[j * nres..(j + 1) * nres];
            for ((c, a), b) in col.iter_mut().zip(&rt).zip(&r) {
                *c = (a - b) / h;
            }
        }
        for i in 0..k {
            let ci = &jac[i * nres..(i + 1) * nres];
            g[i] = ci.iter().zip(&r).map(|(a, b)| a * b).sum();
            for j in 0..=i {
                let cj = &jac[j * nres..(j + 1) * nres];
                let v: f64 = ci.iter().zip(cj).map(|(a, b)| a * b).sum();
                a[i * k + j] = v;
                a[j * k + i] = v;
            }
        }
        if !g.iter().all(|v| v.is_finite()) || !a.iter().all(|v| v.is_finite()) {
            break;
        }
        let old = cost;
        let mut improved = false;
        while lambda < 1e10 {
            mat.copy_from_slice(&a);
            for i in 0..k {
                mat[i * k + i] += lambda * a[i * k + i].max(1e-12) + 1e-14;
            }
            if solve_spd(&mut mat, &g, &mut delta, k) {
                for i in 0..k {
                    xt[i] = x[i] - delta[i];
                }
                if f(&xt, &mut rt) {
                    let c = sum_sq(&rt);
                    if c < cost {
                        x.copy_from_slice(&xt);
                        std::mem::swap(&mut r, &mut rt);
                        cost = c;
                        lambda = (lambda * 0.2).max(1e-9);
                        improved = true;
                        break;
                    }
                }
            }
            lambda *= 8.0;
        }
        if !improved || old - cost <= rel_tol * old + 1e-300 {
            break;
        }
    }
    Some((x, cost))
}

fn sum_sq(r: &[f64]) -> f64 {
    r.iter().map(|v| v * v).sum()
}

/// Solves `M x = b` for symmetric positive definite `M` (k×k, row-major,
/// overwritten by its Cholesky factor). False when `M` is not positive definite.
fn solve_spd(m: &mut [f64], b: &[f64], x: &mut [f64], k: usize) -> bool {
    for j in 0..k {
        let mut d = m[j * k + j];
        for l in 0..j {
            d -= m[j * k + l] * m[j * k + l];
        }
        if d.is_nan() || d <= 0.0 {
            return false;
        }
        let d = d.sqrt();
        m[j * k + j] = d;
        for i in j + 1..k {
            let mut s = m[i * k + j];
            for l in 0..j {
                s -= m[i * k + l] * m[j * k + l];
            }
            m[i * k + j] = s / d;
        }
    }
    for i in 0..k {
        let mut s = b[i];
        for l in 0..i {
            s -= m[i * k + l] * x[l];
        }
        x[i] = s / m[i * k + i];
    }
    for i in (0..k).rev() {
        let mut s = x[i];
        for l in i + 1..k {
            s -= m[l * k + i] * x[l];
        }
        x[i] = s / m[i * k + i];
    }
    x.iter().all(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_an_exponential_curve() {
        let t: Vec<f64> = (0..20).map(|i| i as f64 / 4.0).collect();
        let y: Vec<f64> = t.iter().map(|t| 2.0 * (-0.7 * t).exp()).collect();
        let (x, cost) = minimize(
            |p, r| {
                for (i, t) in t.iter().enumerate() {
                    r[i] = p[0] * (-p[1] * t).exp() - y[i];
                }
                true
            },
            &[1.0, 0.1],
            20,
            100,
            1e-12,
        )
        .unwrap();
        assert!(cost < 1e-12, "{cost}");
        assert!(
            (x[0] - 2.0).abs() < 1e-5 && (x[1] - 0.7).abs() < 1e-5,
            "{x:?}"
        );
    }
}
