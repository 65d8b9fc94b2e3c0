//! A small box-bounded Nelder–Mead for the ETS likelihood: per-parameter
//! initial steps, absolute stopping tolerance on the objective, and no
//! allocation inside the loop (the simplex is one flat buffer).

/// Minimises `f` over `[lo, hi]` from `x0`; returns (x, f(x), evaluations).
pub(super) fn minimize<F>(
    mut f: F,
    x0: &[f64],
    step: &[f64],
    lo: &[f64],
    hi: &[f64],
    max_evals: usize,
    tol: f64,
) -> (Vec<f64>, f64, usize)
where
    F: FnMut(&[f64]) -> f64,
{
    let n = x0.len();
    let clamp = |i: usize, v: f64| v.clamp(lo[i], hi[i]);
    let mut evals = 0usize;
    let mut eval = |x: &[f64], evals: &mut usize| {
        *evals += 1;
        let v = f(x);
        if v.is_nan() {
            f64::INFINITY
        } else {
            v
        }
    };
    let start: Vec<f64> = (0..n).map(|i| clamp(i, x0[i])).collect();
    if n == 0 {
        let v = eval(&start, &mut evals);
        return (start, v, evals);
    }
    let np1 = n + 1;
    let mut simplex = vec![0.0; np1 * n];
    let mut values = vec![0.0; np1];
    simplex[..n].copy_from_slice(&start);
    for k in 0..n {
        let row = &mut simplex[(k + 1) * n..(k + 2) * n];
        row.copy_from_slice(&start);
        let up = start[k] + step[k];
        row[k] = if up <= hi[k] {
            up
        } else {
            clamp(k, start[k] - step[k])
        };
    }
    for j in 0..np1 {
        values[j] = eval(&simplex[j * n..(j + 1) * n], &mut evals);
    }
    let mut centroid = vec![0.0; n];
    let mut xr = vec![0.0; n];
    let mut xe = vec![0.0; n];
    while evals < max_evals {
        // Best, worst and second worst by one scan.
        let (mut best, mut worst) = (0usize, 0usize);
        for j in 1..np1 {
            if values[j] < values[best] {
                best = j;
            }
            if values[j] > values[worst] {
                worst = j;
            }
        }
        if worst == best {
            worst = if best == 0 { 1 } else { 0 };
        }
        let mut second = best;
        for j in 0..np1 {
            if j != worst && values[j] >= values[second] {
                second = j;
            }
        }
        let (fb, fw) = (values[best], values[worst]);
        if fb.is_finite() && fw - fb <= tol {
            break;
        }
        centroid.iter_mut().for_each(|c| *c = 0.0);
        for j in 0..np1 {
            if j != worst {
                for (c, v) in centroid.iter_mut().zip(&simplex[j * n..(j + 1) * n]) {
                    *c += v;
                }
            }
        }
        centroid.iter_mut().for_each(|c| *c /= n as f64);
        let w = worst * n;
        for i in 0..n {
            xr[i] = clamp(i, 2.0 * centroid[i] - simplex[w + i]);
        }
        let fr = eval(&xr, &mut evals);
        if fr < fb {
            for i in 0..n {
                xe[i] = clamp(i, 3.0 * centroid[i] - 2.0 * simplex[w + i]);
            }
            let fe = eval(&xe, &mut evals);
            if fe < fr {
                simplex[w..w + n].copy_from_slice(&xe);
                values[worst] = fe;
            } else {
                simplex[w..w + n].copy_from_slice(&xr);
                values[worst] = fr;
            }
        } else if fr < values[second] {
            simplex[w..w + n].copy_from_slice(&xr);
            values[worst] = fr;
        } else {
            let outside = fr < fw;
            for i in 0..n {
                let d = simplex[w + i] - centroid[i];
                xe[i] = clamp(i, centroid[i] + if outside { 0.5 * d } else { -0.5 * d });
            }
            let fc = eval(&xe, &mut evals);
            if fc < fr.min(fw) {
                simplex[w..w + n].copy_from_slice(&xe);
                values[worst] = fc;
            } else {
                // Shrink towards the best point.
                let b = best * n;
                for j in 0..np1 {
                    if j == best {
                        continue;
                    }
                    for i in 0..n {
                        let v = simplex[b + i] + 0.5 * (simplex[j * n + i] - simplex[b + i]);
                        simplex[j * n + i] = v;
                    }
                    values[j] = eval(&simplex[j * n..(j + 1) * n], &mut evals);
                }
            }
        }
    }
    let mut best = 0;
    for j in 1..np1 {
        if values[j] < values[best] {
            best = j;
        }
    }
    (
        simplex[best * n..(best + 1) * n].to_vec(),
        values[best],
        evals,
    )
}
