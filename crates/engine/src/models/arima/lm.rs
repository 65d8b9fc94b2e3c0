//! Levenberg–Marquardt for small nonlinear least-squares problems with a
//! forward-difference Jacobian. Both ARIMA objectives (conditional sum of
//! squares and the exact Gaussian likelihood written as a sum of squares of
//! scaled innovations) are least-squares problems, so Gauss–Newton steps
//! converge in a handful of iterations where a simplex search needs hundreds
//! of evaluations.

/// A least-squares objective: residuals as a function of the parameters.
pub(crate) trait Residuals {
    /// Fills `r` with the residuals at `x`; false when `x` is inadmissible
    /// (treated as an infinitely bad point).
    fn eval(&mut self, x: &[f64], r: &mut [f64]) -> bool;

    /// [`Residuals::eval`] at several points: `xs` holds them one after
    /// another, `rs` their residual vectors one after another, and `ok[i]` is
    /// the result for point i. Must give exactly what `eval` gives; an
    /// implementation may interleave the evaluations to run faster.
    fn eval_many(&mut self, xs: &[f64], rs: &mut [f64], ok: &mut [bool]) {
        let count = ok.len().max(1);
        let (k, nres) = (xs.len() / count, rs.len() / count);
        for ((x, r), good) in xs
            .chunks(k.max(1))
            .zip(rs.chunks_mut(nres.max(1)))
            .zip(ok.iter_mut())
        {
            *good = self.eval(x, r);
        }
    }
}

/// Minimises `Σ r_i(x)²` over the `nres` residuals of `f`. Returns the best
/// point and its cost, or `None` when `x0` itself is inadmissible.
pub(crate) fn minimize<F: Residuals>(
    mut f: F,
    x0: &[f64],
    nres: usize,
    max_iter: usize,
    rel_tol: f64,
) -> Option<(Vec<f64>, f64)> {
    let k = x0.len();
    let mut x = x0.to_vec();
    let mut r = vec![0.0; nres];
    if !f.eval(&x, &mut r) {
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
    let mut xs = vec![0.0; k * k];
    let mut steps = vec![0.0; k];
    let mut ok = vec![false; k];
    let mut a = vec![0.0; k * k];
    let mut g = vec![0.0; k];
    let mut mat = vec![0.0; k * k];
    let mut delta = vec![0.0; k];
    let mut lambda = 1e-3;
    for _ in 0..max_iter {
        // Jacobian by forward differences (backward at the admissible
        // boundary): the forward points all at once, each into its column.
        for j in 0..k {
            steps[j] = 1e-6 * x[j].abs().max(0.1);
            let point = &mut xs[j * k..(j + 1) * k];
            point.copy_from_slice(&x);
            point[j] += steps[j];
        }
        f.eval_many(&xs, &mut jac, &mut ok);
        for j in 0..k {
            let col = &mut jac[j * nres..(j + 1) * nres];
            let mut h = steps[j];
            if !ok[j] {
                h = -h;
                xt.copy_from_slice(&x);
                xt[j] = x[j] + h;
                if !f.eval(&xt, col) {
                    col.copy_from_slice(&r);
                }
            }
            for (c, b) in col.iter_mut().zip(&r) {
                *c = (*c - b) / h;
            }
        }
        normal_equations(&jac, &r, k, &mut a, &mut g);
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
                if f.eval(&xt, &mut rt) {
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

/// The Gauss–Newton system: `a = JᵀJ` (k×k, symmetric) and `g = Jᵀr`, with
/// the Jacobian stored column after column (`jac[j·n..(j+1)·n]`).
///
/// Each entry is a plain sum over the residuals in order, exactly as a
/// sequential dot product would give it; four of them are accumulated in one
/// pass so that their additions overlap instead of each waiting for the
/// previous one (these sums were a tenth of an ARIMA fit).
fn normal_equations(jac: &[f64], r: &[f64], k: usize, a: &mut [f64], g: &mut [f64]) {
    let n = r.len();
    // (left column, right vector) of every entry; `None` as the right one
    // means the residuals. Lower triangle of JᵀJ, then Jᵀr.
    let col = |j: usize| &jac[j * n..(j + 1) * n];
    let mut sums: Vec<(usize, Option<usize>)> = Vec::with_capacity(k * (k + 3) / 2);
    for i in 0..k {
        for j in 0..=i {
            sums.push((i, Some(j)));
        }
        sums.push((i, None));
    }
    let other = |s: &(usize, Option<usize>)| match s.1 {
        Some(j) => col(j),
        None => r,
    };
    let mut values = Vec::with_capacity(sums.len());
    for chunk in sums.chunks(4) {
        match chunk {
            [p, q, s, t] => {
                let (x0, y0) = (&col(p.0)[..n], &other(p)[..n]);
                let (x1, y1) = (&col(q.0)[..n], &other(q)[..n]);
                let (x2, y2) = (&col(s.0)[..n], &other(s)[..n]);
                let (x3, y3) = (&col(t.0)[..n], &other(t)[..n]);
                // -0.0: the neutral element `Iterator::sum` starts from.
                let (mut v0, mut v1, mut v2, mut v3) = (-0.0, -0.0, -0.0, -0.0);
                for i in 0..n {
                    v0 += x0[i] * y0[i];
                    v1 += x1[i] * y1[i];
                    v2 += x2[i] * y2[i];
                    v3 += x3[i] * y3[i];
                }
                values.extend([v0, v1, v2, v3]);
            }
            rest => {
                for p in rest {
                    let v: f64 = col(p.0).iter().zip(other(p)).map(|(a, b)| a * b).sum();
                    values.push(v);
                }
            }
        }
    }
    for (&(i, j), v) in sums.iter().zip(values) {
        match j {
            Some(j) => {
                a[i * k + j] = v;
                a[j * k + i] = v;
            }
            None => g[i] = v,
        }
    }
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

    /// A closure `f(x, r) -> admissible` as [`Residuals`].
    struct Closure<F>(F);

    impl<F: FnMut(&[f64], &mut [f64]) -> bool> Residuals for Closure<F> {
        fn eval(&mut self, x: &[f64], r: &mut [f64]) -> bool {
            (self.0)(x, r)
        }
    }

    #[test]
    fn normal_equations_equal_the_sequential_dot_products_bit_for_bit() {
        for (k, n) in [(1, 7), (3, 50), (5, 101), (6, 33)] {
            let jac: Vec<f64> = (0..k * n)
                .map(|i| {
                    ((i * 7919 % 101) as f64 - 50.0) / 7.0 * if i % 13 == 0 { 0.0 } else { 1.0 }
                })
                .collect();
            let r: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let (mut a, mut g) = (vec![f64::NAN; k * k], vec![f64::NAN; k]);
            normal_equations(&jac, &r, k, &mut a, &mut g);
            for i in 0..k {
                let ci = &jac[i * n..(i + 1) * n];
                let gi: f64 = ci.iter().zip(&r).map(|(a, b)| a * b).sum();
                assert_eq!(g[i].to_bits(), gi.to_bits());
                for j in 0..k {
                    let cj = &jac[j * n..(j + 1) * n];
                    let v: f64 = ci.iter().zip(cj).map(|(a, b)| a * b).sum();
                    assert_eq!(a[i * k + j].to_bits(), v.to_bits(), "k {k} ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn fits_an_exponential_curve() {
        let t: Vec<f64> = (0..20).map(|i| i as f64 / 4.0).collect();
        let y: Vec<f64> = t.iter().map(|t| 2.0 * (-0.7 * t).exp()).collect();
        let (x, cost) = minimize(
            Closure(|p: &[f64], r: &mut [f64]| {
                for (i, t) in t.iter().enumerate() {
                    r[i] = p[0] * (-p[1] * t).exp() - y[i];
                }
                true
            }),
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
