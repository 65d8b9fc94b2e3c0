//! Lag-polynomial helpers: expanding multiplicative seasonal factors and
//! checking stationarity / invertibility without computing roots.

/// Longest polynomial [`roots_outside`] checks (our orders are at most 5).
const MAX_DEGREE: usize = 32;

/// True when every root of `1 − Σ c_i z^i` has modulus greater than `radius`
/// (radius 1: a stationary AR polynomial). Uses the Schur–Cohn step-down
/// (reverse Durbin–Levinson) recursion: all partial autocorrelations of the
/// scaled polynomial must lie strictly inside (−1, 1).
pub(crate) fn roots_outside(c: &[f64], radius: f64) -> bool {
    let mut k = c.len();
    while k > 0 && c[k - 1] == 0.0 {
        k -= 1;
    }
    if k == 0 {
        return true;
    }
    if k > MAX_DEGREE {
        return false;
    }
    let mut a = [0.0; MAX_DEGREE];
    let mut tmp = [0.0; MAX_DEGREE];
    let mut s = 1.0;
    for i in 0..k {
        s *= radius;
        a[i] = c[i] * s;
        if !a[i].is_finite() {
            return false;
        }
    }
    while k > 0 {
        let kk = a[k - 1];
        if kk.abs() >= 1.0 || kk.is_nan() {
            return false;
        }
        let den = 1.0 - kk * kk;
        for i in 0..k - 1 {
            tmp[i] = (a[i] + kk * a[k - 2 - i]) / den;
        }
        a[..k - 1].copy_from_slice(&tmp[..k - 1]);
        k -= 1;
    }
    true
}

/// Same check for an MA polynomial `1 + Σ θ_i z^i`.
pub(crate) fn ma_roots_outside(theta: &[f64], radius: f64) -> bool {
    let mut neg = [0.0; MAX_DEGREE];
    if theta.len() > MAX_DEGREE {
        return false;
    }
    for (n, t) in neg.iter_mut().zip(theta) {
        *n = -t;
    }
    roots_outside(&neg[..theta.len()], radius)
}

/// Coefficients `a_1..a_{p+Pm}` of `(1 − Σ φ_i B^i)(1 − Σ Φ_j B^{jm}) = 1 − Σ a_k B^k`.
pub(crate) fn expand_ar(phi: &[f64], sphi: &[f64], m: usize, out: &mut Vec<f64>) {
    out.clear();
    out.resize(phi.len() + sphi.len() * m, 0.0);
    for (i, v) in phi.iter().enumerate() {
        out[i] += v;
    }
    for (j, s) in sphi.iter().enumerate() {
        out[(j + 1) * m - 1] += s;
        for (i, v) in phi.iter().enumerate() {
            out[(j + 1) * m + i] -= v * s;
        }
    }
}

/// Coefficients `b_1..b_{q+Qm}` of `(1 + Σ θ_i B^i)(1 + Σ Θ_j B^{jm}) = 1 + Σ b_k B^k`.
pub(crate) fn expand_ma(theta: &[f64], stheta: &[f64], m: usize, out: &mut Vec<f64>) {
    out.clear();
    out.resize(theta.len() + stheta.len() * m, 0.0);
    for (i, v) in theta.iter().enumerate() {
        out[i] += v;
    }
    for (j, s) in stheta.iter().enumerate() {
        out[(j + 1) * m - 1] += s;
        for (i, v) in theta.iter().enumerate() {
            out[(j + 1) * m + i] += v * s;
        }
    }
}

/// Coefficients `δ_1..δ_L` of `(1 − B)^d (1 − B^m)^D = 1 + Σ δ_i B^i`, L = d + D·m.
pub(crate) fn differencing(d: usize, sd: usize, m: usize) -> Vec<f64> {
    let mut poly = vec![1.0];
    let mut mul = |lag: usize| {
        let mut next = vec![0.0; poly.len() + lag];
        for (i, v) in poly.iter().enumerate() {
            next[i] += v;
            next[i + lag] -= v;
        }
        poly = next;
    };
    for _ in 0..d {
        mul(1);
    }
    for _ in 0..sd {
        mul(m.max(1));
    }
    poly.remove(0);
    poly
}

/// Applies `(1 − B)^d (1 − B^m)^D` to `y`; the result is `L` points shorter.
pub(crate) fn difference(y: &[f64], d: usize, sd: usize, m: usize) -> Vec<f64> {
    let mut x = y.to_vec();
    for _ in 0..sd {
        x = x.windows(m + 1).map(|w| w[m] - w[0]).collect();
    }
    for _ in 0..d {
        x = x.windows(2).map(|w| w[1] - w[0]).collect();
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stationarity_triangle_of_ar2() {
        // AR(2) is stationary iff a1 + a2 < 1, a2 − a1 < 1, |a2| < 1.
        for &(a1, a2) in &[(1.5, -0.6), (0.5, 0.3), (-0.2, 0.7), (0.0, -0.9)] {
            assert!(roots_outside(&[a1, a2], 1.0), "{a1} {a2}");
        }
        for &(a1, a2) in &[(0.5, 0.6), (-0.5, 0.6), (0.0, 1.0), (2.0, -1.2)] {
            assert!(!roots_outside(&[a1, a2], 1.0), "{a1} {a2}");
        }
        assert!(roots_outside(&[0.99], 1.0));
        assert!(!roots_outside(&[0.995], 1.01));
    }

    #[test]
    fn expansions_multiply_polynomials() {
        let mut a = Vec::new();
        expand_ar(&[0.5], &[0.3], 4, &mut a);
        // (1 − .5B)(1 − .3B⁴) = 1 − .5B − .3B⁴ + .15B⁵
        assert_eq!(a.len(), 5);
        let want = [0.5, 0.0, 0.0, 0.3, -0.15];
        for (g, w) in a.iter().zip(want) {
            assert!((g - w).abs() < 1e-15);
        }
        expand_ma(&[0.5], &[0.3], 4, &mut a);
        let want = [0.5, 0.0, 0.0, 0.3, 0.15];
        for (g, w) in a.iter().zip(want) {
            assert!((g - w).abs() < 1e-15);
        }
        // (1 − B)(1 − B⁴) = 1 − B − B⁴ + B⁵
        assert_eq!(differencing(1, 1, 4), vec![-1.0, 0.0, 0.0, -1.0, 1.0]);
        let y = [1.0, 4.0, 9.0, 16.0, 25.0, 36.0, 49.0];
        let w = difference(&y, 1, 1, 4);
        let delta = differencing(1, 1, 4);
        for (t, wt) in w.iter().enumerate() {
            let tt = t + 5;
            let direct = y[tt]
                + delta
                    .iter()
                    .enumerate()
                    .map(|(i, c)| c * y[tt - i - 1])
                    .sum::<f64>();
            assert!((wt - direct).abs() < 1e-12);
        }
    }
}
