//! STL: seasonal-trend decomposition by LOESS (Cleveland, Cleveland, McRae &
//! Terpenning 1990), the building block of the multi-season model
//! ([`super::mstl`]).
//!
//! The inner loop of the paper, without the robustness (outer) loop:
//! detrend, smooth each cycle-subseries by LOESS (extended one cycle at both
//! ends), remove the low-pass of that (moving averages m, m, 3 and a LOESS),
//! deseasonalise and smooth the trend by LOESS. Every LOESS is local-linear
//! with tricube weights on the integer grid and, as in the paper, evaluated
//! every `jump = ⌈span/10⌉` points and linearly interpolated in between, so a
//! decomposition costs O(n) whatever the season length.

/// Inner-loop passes (the paper's n_i without robustness).
const INNER: usize = 2;

/// Smallest odd integer ≥ `x`.
fn odd_at_least(x: f64) -> usize {
    let k = x.ceil().max(1.0) as usize;
    if k.is_multiple_of(2) {
        k + 1
    } else {
        k
    }
}

/// The result of one decomposition: `y = seasonal + trend + remainder`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decomposition {
    pub seasonal: Vec<f64>,
    pub trend: Vec<f64>,
}

/// STL of `y` with season `period` (≥ 2) and seasonal window `seasonal_span`
/// (odd, ≥ 7 is usual). The trend and low-pass spans are the paper's
/// defaults. `y` should cover at least two periods.
pub fn decompose(y: &[f64], period: usize, seasonal_span: usize) -> Decomposition {
    let n = y.len();
    let m = period.max(2);
    let ns = odd_at_least(seasonal_span.max(3) as f64);
    let nt = odd_at_least(1.5 * m as f64 / (1.0 - 1.5 / ns as f64));
    let nl = odd_at_least(m as f64);
    let mut trend = vec![0.0; n];
    let mut seasonal = vec![0.0; n];
    let mut work = vec![0.0; n];
    let mut cycle = vec![0.0; n + 2 * m];
    for _ in 0..INNER {
        // 1. Detrend.
        for t in 0..n {
            work[t] = y[t] - trend[t];
        }
        // 2. Cycle-subseries smoothing, one cycle beyond each end.
        subseries_smooth(&work, m, ns, &mut cycle);
        // 3. Low-pass filter of the smoothed cycle-subseries.
        let low = moving_average(&moving_average(&moving_average(&cycle, m), m), 3);
        let low = loess_grid(&low, nl);
        // 4. Detrended seasonal component.
        for t in 0..n {
            seasonal[t] = cycle[t + m] - low[t];
        }
        // 5–6. Deseasonalise and smooth the trend.
        for t in 0..n {
            work[t] = y[t] - seasonal[t];
        }
        trend = loess_grid(&work, nt);
    }
    Decomposition { seasonal, trend }
}

/// LOESS of each cycle-subseries of `y` (period `m`), written into `out`
/// (length n + 2m) at time t + m for t in −m..n+m.
///
/// LOESS is linear in the data, and every subseries has one of two lengths:
/// the smoother's weights for each evaluation position are computed once
/// per length and applied to every phase (with a long season the subseries
/// are short and their evaluations were most of the cost).
fn subseries_smooth(y: &[f64], m: usize, span: usize, out: &mut [f64]) {
    let n = y.len();
    let mut sub = Vec::with_capacity(n / m + 1);
    let mut cache: Vec<(usize, Vec<Row>)> = Vec::new();
    for phase in 0..m {
        sub.clear();
        sub.extend((phase..n).step_by(m).map(|t| y[t]));
        let k = sub.len();
        let rows = match cache.iter().position(|(len, _)| *len == k) {
            Some(i) => &cache[i].1,
            None => {
                cache.push((k, subseries_rows(k, span)));
                &cache[cache.len() - 1].1
            }
        };
        for (i, row) in rows.iter().enumerate() {
            let idx = phase + i * m;
            if idx < out.len() {
                out[idx] = row.apply(&sub);
            }
        }
    }
}

/// One LOESS evaluation as weights on a window of the data.
struct Row {
    lo: usize,
    weights: Vec<f64>,
}

impl Row {
    fn apply(&self, y: &[f64]) -> f64 {
        if self.weights.is_empty() {
            return 0.0;
        }
        self.weights
            .iter()
            .zip(&y[self.lo..])
            .map(|(w, v)| w * v)
            .sum()
    }
}

/// The evaluations of a subseries of length `k`: at −1, at 0..k (the
/// `loess_grid` positions, interpolated in between) and at k.
fn subseries_rows(k: usize, span: usize) -> Vec<Row> {
    if k == 0 {
        return (0..2)
            .map(|_| Row {
                lo: 0,
                weights: Vec::new(),
            })
            .collect();
    }
    let mut rows = Vec::with_capacity(k + 2);
    rows.push(loess_row(k, span, -1.0));
    let jump = span.div_ceil(10).max(1);
    let mut prev: Option<usize> = None;
    let mut t = 0;
    let mut grid: Vec<Row> = (0..k)
        .map(|_| Row {
            lo: 0,
            weights: Vec::new(),
        })
        .collect();
    loop {
        grid[t] = loess_row(k, span, t as f64);
        if let Some(p) = prev {
            let gap = (t - p) as f64;
            for i in p + 1..t {
                let w = (i - p) as f64 / gap;
                grid[i] = interpolate(&grid[p], &grid[t], w);
            }
        }
        prev = Some(t);
        if t == k - 1 {
            break;
        }
        t = (t + jump).min(k - 1);
    }
    rows.extend(grid);
    rows.push(loess_row(k, span, k as f64));
    rows
}

/// (1 − w)·a + w·b as one row.
fn interpolate(a: &Row, b: &Row, w: f64) -> Row {
    let lo = a.lo.min(b.lo);
    let hi = (a.lo + a.weights.len()).max(b.lo + b.weights.len());
    let mut weights = vec![0.0; hi - lo];
    for (i, v) in a.weights.iter().enumerate() {
        weights[a.lo - lo + i] += (1.0 - w) * v;
    }
    for (i, v) in b.weights.iter().enumerate() {
        weights[b.lo - lo + i] += w * v;
    }
    Row { lo, weights }
}

/// The weights of [`loess_at`] at `x` for data of length `n`: the value is
/// their dot product with the window of the data starting at `lo`.
fn loess_row(n: usize, span: usize, x: f64) -> Row {
    if n == 1 {
        return Row {
            lo: 0,
            weights: vec![1.0],
        };
    }
    let q = span.clamp(1, n);
    let (lo, h) = window(n, span, x);
    let w: Vec<f64> = (0..q)
        .map(|i| tricube((((lo + i) as f64) - x).abs(), h))
        .collect();
    let xi = |i: usize| (lo + i) as f64 - x;
    let sw: f64 = w.iter().sum();
    if sw <= 0.0 {
        let i = (x.round().max(0.0) as usize).min(n - 1);
        let mut weights = vec![0.0; q];
        weights[i - lo.min(i)] = 1.0;
        return Row { lo, weights };
    }
    let xbar = w.iter().enumerate().map(|(i, wi)| wi * xi(i)).sum::<f64>() / sw;
    let var = w
        .iter()
        .enumerate()
        .map(|(i, wi)| wi * xi(i) * xi(i))
        .sum::<f64>()
        / sw
        - xbar * xbar;
    let range = (n - 1) as f64;
    let linear = var.sqrt() > 0.001 * range;
    // Local-linear: ŷ(x) = Σ (wᵢ/Σw)(1 − x̄(xᵢ − x̄)/var) yᵢ.
    let weights = w
        .iter()
        .enumerate()
        .map(|(i, wi)| {
            if linear {
                wi / sw * (1.0 - xbar * (xi(i) - xbar) / var)
            } else {
                wi / sw
            }
        })
        .collect();
    Row { lo, weights }
}

/// The window start and bandwidth of a LOESS at `x` over `n` points.
fn window(n: usize, span: usize, x: f64) -> (usize, f64) {
    let q = span.clamp(1, n);
    // The q nearest grid points to x form one window [lo, lo + q).
    let centre = x - (q as f64 - 1.0) / 2.0;
    let lo = (centre.round().max(0.0) as usize).min(n - q);
    let hi = lo + q - 1;
    let mut h = (x - lo as f64).abs().max((hi as f64 - x).abs());
    if span > n {
        h += ((span - n) / 2) as f64;
    }
    (lo, h.max(0.5))
}

/// Tricube weight at distance `d` with bandwidth `h` (the paper's cut-offs).
fn tricube(d: f64, h: f64) -> f64 {
    if d <= 0.001 * h {
        1.0
    } else if d < 0.999 * h {
        let r = d / h;
        let c = 1.0 - r * r * r;
        c * c * c
    } else {
        0.0
    }
}

/// Moving average of order `k`: length n − k + 1.
fn moving_average(y: &[f64], k: usize) -> Vec<f64> {
    let n = y.len();
    if k == 0 || n < k {
        return y.to_vec();
    }
    let mut out = Vec::with_capacity(n - k + 1);
    let mut sum: f64 = y[..k].iter().sum();
    out.push(sum / k as f64);
    for t in k..n {
        sum += y[t] - y[t - k];
        out.push(sum / k as f64);
    }
    out
}

/// LOESS of `y` (positions 0..n) evaluated at every position: at every
/// `jump`-th point (and the last) and linearly interpolated in between.
pub fn loess_grid(y: &[f64], span: usize) -> Vec<f64> {
    let n = y.len();
    if n == 0 {
        return Vec::new();
    }
    let jump = span.div_ceil(10).max(1);
    let mut out = vec![0.0; n];
    let kernel = Kernel::new(span, n);
    let mut prev: Option<usize> = None;
    let mut t = 0;
    loop {
        out[t] = match &kernel {
            Some(k) if t >= k.half && t + k.half < n => k.apply(y, t),
            _ => loess_at(y, span, t as f64),
        };
        if let Some(p) = prev {
            let gap = (t - p) as f64;
            for i in p + 1..t {
                let w = (i - p) as f64 / gap;
                out[i] = out[p] * (1.0 - w) + out[t] * w;
            }
        }
        prev = Some(t);
        if t == n - 1 {
            break;
        }
        t = (t + jump).min(n - 1);
    }
    out
}

/// The tricube weights of an interior evaluation: where the window of an odd
/// `span` ≤ n lies symmetrically around an integer position, the weights
/// depend only on the distance and, being symmetric, make the local-linear
/// fit there the weighted mean. Computed once per smoothing, they turn each
/// interior evaluation into one dot product (most of an STL's cost was
/// recomputing them in [`loess_at`]).
struct Kernel {
    half: usize,
    /// Weight at distance d = 0..=half, divided by the total weight.
    weights: Vec<f64>,
}

impl Kernel {
    fn new(span: usize, n: usize) -> Option<Self> {
        if span.is_multiple_of(2) || span > n || span < 3 {
            return None;
        }
        let half = (span - 1) / 2;
        // The same weights as `loess_at` with h = half.
        let h = half as f64;
        let (upper, lower) = (0.999 * h, 0.001 * h);
        let mut weights: Vec<f64> = (0..=half)
            .map(|d| {
                let d = d as f64;
                if d <= lower {
                    1.0
                } else if d < upper {
                    let r = d / h;
                    let c = 1.0 - r * r * r;
                    c * c * c
                } else {
                    0.0
                }
            })
            .collect();
        let total = weights[0] + 2.0 * weights[1..].iter().sum::<f64>();
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        for w in &mut weights {
            *w /= total;
        }
        Some(Self { half, weights })
    }

    /// The LOESS value at `t` (requires half ≤ t < n − half).
    fn apply(&self, y: &[f64], t: usize) -> f64 {
        let mut s = self.weights[0] * y[t];
        for (d, w) in self.weights.iter().enumerate().skip(1) {
            s += w * (y[t - d] + y[t + d]);
        }
        s
    }
}

/// Local-linear LOESS value at position `x` (may lie outside 0..n) from the
/// `span` nearest points, tricube weights; the bandwidth grows beyond the data
/// when `span` exceeds n, as in the paper.
fn loess_at(y: &[f64], span: usize, x: f64) -> f64 {
    let n = y.len();
    if n == 1 {
        return y[0];
    }
    let q = span.clamp(1, n);
    let (lo, h) = window(n, span, x);
    let hi = lo + q - 1;
    let (mut sw, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let upper = 0.999 * h;
    let lower = 0.001 * h;
    // One division per evaluation, not per point: this loop is most of the
    // cost of a decomposition.
    let inv_h = 1.0 / h;
    for (i, &v) in y[lo..=hi].iter().enumerate() {
        let xi = (lo + i) as f64 - x;
        let d = xi.abs();
        let w = if d <= lower {
            1.0
        } else if d < upper {
            let r = d * inv_h;
            let c = 1.0 - r * r * r;
            c * c * c
        } else {
            continue;
        };
        sw += w;
        sx += w * xi;
        sy += w * v;
        sxx += w * xi * xi;
        sxy += w * xi * v;
    }
    if sw <= 0.0 {
        // Every weight vanished (cannot happen for h > 0): nearest value.
        let i = (x.round().max(0.0) as usize).min(n - 1);
        return y[i];
    }
    let xbar = sx / sw;
    let ybar = sy / sw;
    let var = sxx / sw - xbar * xbar;
    // Local-linear when the window has spread, local-constant otherwise
    // (the paper's test: spread above 0.001 of the range).
    let range = (n - 1) as f64;
    if var.sqrt() > 0.001 * range {
        let slope = (sxy / sw - xbar * ybar) / var;
        ybar - slope * xbar
    } else {
        ybar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loess_reproduces_a_line_and_extrapolates_it() {
        let y: Vec<f64> = (0..30).map(|t| 2.0 + 0.5 * t as f64).collect();
        let s = loess_grid(&y, 7);
        for (a, b) in s.iter().zip(&y) {
            assert!((a - b).abs() < 1e-9);
        }
        assert!((loess_at(&y, 7, -1.0) - 1.5).abs() < 1e-9);
        assert!((loess_at(&y, 7, 30.0) - 17.0).abs() < 1e-9);
        // A span wider than the data still fits the line.
        assert!((loess_at(&y[..4], 11, 4.0) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn the_interior_kernel_equals_the_general_evaluation() {
        let y: Vec<f64> = (0..200)
            .map(|t| (t as f64 * 0.37).sin() * 5.0 + (t * t % 17) as f64)
            .collect();
        for span in [3, 7, 11, 61, 199] {
            let k = Kernel::new(span, y.len()).unwrap();
            for t in k.half..y.len() - k.half {
                let a = k.apply(&y, t);
                let b = loess_at(&y, span, t as f64);
                assert!((a - b).abs() < 1e-9, "span {span} t {t}: {a} vs {b}");
            }
        }
        assert!(Kernel::new(8, 100).is_none() && Kernel::new(101, 100).is_none());
    }

    #[test]
    fn subseries_weights_equal_the_direct_smoothing() {
        let y: Vec<f64> = (0..97)
            .map(|t| (t as f64 * 0.61).cos() * 3.0 + (t % 5) as f64)
            .collect();
        for (m, span) in [(7, 11), (24, 7), (30, 15), (60, 15)] {
            let mut out = vec![0.0; y.len() + 2 * m];
            subseries_smooth(&y, m, span, &mut out);
            for phase in 0..m {
                let sub: Vec<f64> = (phase..y.len()).step_by(m).map(|t| y[t]).collect();
                let k = sub.len();
                let mut want = vec![loess_at(&sub, span, -1.0)];
                want.extend(loess_grid(&sub, span));
                want.push(loess_at(&sub, span, k as f64));
                for (i, w) in want.iter().enumerate() {
                    let got = out[phase + i * m];
                    assert!(
                        (got - w).abs() < 1e-9,
                        "m {m} phase {phase} i {i}: {got} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn separates_a_season_from_a_trend() {
        let pattern = [3.0, -1.0, 0.5, -2.5];
        let y: Vec<f64> = (0..80)
            .map(|t| 10.0 + 0.2 * t as f64 + pattern[t % 4])
            .collect();
        let d = decompose(&y, 4, 7);
        for t in 8..72 {
            assert!(
                (d.seasonal[t] - pattern[t % 4]).abs() < 0.05,
                "t={t}: {}",
                d.seasonal[t]
            );
            assert!((d.trend[t] - (10.0 + 0.2 * t as f64)).abs() < 0.05);
        }
    }
}
