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
fn subseries_smooth(y: &[f64], m: usize, span: usize, out: &mut [f64]) {
    let n = y.len();
    let mut sub = Vec::with_capacity(n / m + 1);
    let mut fitted = Vec::with_capacity(n / m + 3);
    for phase in 0..m {
        sub.clear();
        sub.extend((phase..n).step_by(m).map(|t| y[t]));
        let k = sub.len();
        fitted.clear();
        if k == 0 {
            fitted.resize(2, 0.0);
        } else {
            fitted.push(loess_at(&sub, span, -1.0));
            fitted.extend(loess_grid(&sub, span));
            fitted.push(loess_at(&sub, span, k as f64));
        }
        for (i, v) in fitted.iter().enumerate() {
            let idx = phase + i * m;
            if idx < out.len() {
                out[idx] = *v;
            }
        }
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
    let mut prev: Option<usize> = None;
    let mut t = 0;
    loop {
        out[t] = loess_at(y, span, t as f64);
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

/// Local-linear LOESS value at position `x` (may lie outside 0..n) from the
/// `span` nearest points, tricube weights; the bandwidth grows beyond the data
/// when `span` exceeds n, as in the paper.
fn loess_at(y: &[f64], span: usize, x: f64) -> f64 {
    let n = y.len();
    if n == 1 {
        return y[0];
    }
    let q = span.clamp(1, n);
    // The q nearest grid points to x form one window [lo, lo + q).
    let centre = x - (q as f64 - 1.0) / 2.0;
    let lo = (centre.round().max(0.0) as usize).min(n - q);
    let hi = lo + q - 1;
    let mut h = (x - lo as f64).abs().max((hi as f64 - x).abs());
    if span > n {
        h += ((span - n) / 2) as f64;
    }
    let h = h.max(0.5);
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
