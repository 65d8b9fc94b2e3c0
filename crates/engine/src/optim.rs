//! Derivative-free minimisation (Nelder–Mead with box bounds), shared by the
//! model families that fit parameters by likelihood.

/// Options for [`nelder_mead`].
#[derive(Debug, Clone, Copy)]
pub struct NelderMead {
    /// Stop after this many objective evaluations.
    pub max_evals: usize,
    /// Stop when the spread of objective values in the simplex falls below this
    /// (relative to their magnitude).
    pub tol: f64,
    /// Initial step, as a fraction of each parameter's box width.
    pub init_step: f64,
}

impl Default for NelderMead {
    fn default() -> Self {
        Self {
            max_evals: 1_000,
            tol: 1e-8,
            init_step: 0.05,
        }
    }
}

/// Result of a minimisation.
#[derive(Debug, Clone)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub evals: usize,
}

impl NelderMead {
    /// Minimises `f` over the box `[lower, upper]` starting at `x0`. Points
    /// outside the box are clamped to it; `f` may return `f64::INFINITY` (or NaN,
    /// treated as infinity) for inadmissible points.
    pub fn minimize<F>(&self, mut f: F, x0: &[f64], lower: &[f64], upper: &[f64]) -> Minimum
    where
        F: FnMut(&[f64]) -> f64,
    {
        let n = x0.len();
        let clamp = |x: &mut [f64]| {
            for i in 0..n {
                x[i] = x[i].clamp(lower[i], upper[i]);
            }
        };
        let mut eval = |x: &[f64], evals: &mut usize| {
            *evals += 1;
            let v = f(x);
            if v.is_nan() {
                f64::INFINITY
            } else {
                v
            }
        };
        let mut evals = 0;
        if n == 0 {
            let value = eval(x0, &mut evals);
            return Minimum {
                x: vec![],
                value,
                evals,
            };
        }

        // Initial simplex: x0 plus a step along each axis, stepping inwards at a bound.
        let mut simplex: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
        let mut start = x0.to_vec();
        clamp(&mut start);
        simplex.push(start.clone());
        for i in 0..n {
            let mut p = start.clone();
            let width = (upper[i] - lower[i]).abs();
            let step = if width.is_finite() && width > 0.0 {
                self.init_step * width
            } else {
                self.init_step * p[i].abs().max(1.0)
            };
            p[i] = if p[i] + step <= upper[i] {
                p[i] + step
            } else {
                p[i] - step
            };
            clamp(&mut p);
            simplex.push(p);
        }
        let mut values: Vec<f64> = simplex.iter().map(|p| eval(p, &mut evals)).collect();

        let (alpha, gamma, rho, sigma) = (1.0, 2.0, 0.5, 0.5);
        let mut centroid = vec![0.0; n];
        let mut trial = vec![0.0; n];
        let mut trial2 = vec![0.0; n];
        while evals < self.max_evals {
            // Order: best first.
            let mut order: Vec<usize> = (0..=n).collect();
            order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
            simplex = order.iter().map(|&i| simplex[i].clone()).collect();
            values = order.iter().map(|&i| values[i]).collect();

            let (best, worst) = (values[0], values[n]);
            if best.is_finite()
                && worst.is_finite()
                && (worst - best).abs() <= self.tol * (best.abs() + worst.abs() + 1e-12)
            {
                break;
            }

            centroid.iter_mut().for_each(|c| *c = 0.0);
            for p in &simplex[..n] {
                for (c, v) in centroid.iter_mut().zip(p) {
                    *c += v / n as f64;
                }
            }
            let along = |coef: f64, out: &mut [f64], worst: &[f64]| {
                for i in 0..n {
                    out[i] =
                        (centroid[i] + coef * (worst[i] - centroid[i])).clamp(lower[i], upper[i]);
                }
            };

            along(-alpha, &mut trial, &simplex[n]);
            let fr = eval(&trial, &mut evals);
            if fr < values[0] {
                along(-gamma, &mut trial2, &simplex[n]);
                let fe = eval(&trial2, &mut evals);
                if fe < fr {
                    simplex[n].copy_from_slice(&trial2);
                    values[n] = fe;
                } else {
                    simplex[n].copy_from_slice(&trial);
                    values[n] = fr;
                }
            } else if fr < values[n - 1] {
                simplex[n].copy_from_slice(&trial);
                values[n] = fr;
            } else {
                // Contract, outside if the reflection improved on the worst point.
                let outside = fr < values[n];
                along(if outside { -rho } else { rho }, &mut trial2, &simplex[n]);
                let fc = eval(&trial2, &mut evals);
                if fc < fr.min(values[n]) {
                    simplex[n].copy_from_slice(&trial2);
                    values[n] = fc;
                } else {
                    // Shrink towards the best point.
                    let (best, rest) = simplex.split_at_mut(1);
                    for (point, value) in rest.iter_mut().zip(values[1..].iter_mut()) {
                        for (p, b) in point.iter_mut().zip(&best[0]) {
                            *p = b + sigma * (*p - b);
                        }
                        *value = eval(point, &mut evals);
                    }
                }
            }
        }
        let best = (0..=n)
            .min_by(|&a, &b| values[a].total_cmp(&values[b]))
            .unwrap_or(0);
        Minimum {
            x: simplex[best].clone(),
            value: values[best],
            evals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_a_quadratic() {
        let f = |x: &[f64]| (x[0] - 1.0).powi(2) + 10.0 * (x[1] + 0.5).powi(2);
        let m = NelderMead::default().minimize(f, &[0.0, 0.0], &[-5.0, -5.0], &[5.0, 5.0]);
        assert!(
            (m.x[0] - 1.0).abs() < 1e-3 && (m.x[1] + 0.5).abs() < 1e-3,
            "{m:?}"
        );
    }

    #[test]
    fn respects_bounds() {
        let f = |x: &[f64]| (x[0] - 3.0).powi(2);
        let m = NelderMead::default().minimize(f, &[0.5], &[0.0], &[1.0]);
        assert!((m.x[0] - 1.0).abs() < 1e-6, "{m:?}");
    }
}
