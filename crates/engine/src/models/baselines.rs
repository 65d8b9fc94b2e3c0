//! Baseline models: naive, seasonal naive, drift, mean, Naive2 (naive on the
//! seasonally adjusted series) and simple exponential smoothing.
//!
//! Each baseline follows the family contract: `fit`, `forecast`, and `refilter`
//! (same parameters, state recomputed over another series, no optimisation).

use crate::seasonal::{is_seasonal, SeasonKind, Seasonality};
use serde::{Deserialize, Serialize};

/// The last value, repeated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Naive {
    pub last: f64,
}

impl Naive {
    pub fn fit(y: &[f64]) -> Self {
        Self {
            last: y.last().copied().unwrap_or(0.0),
        }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        vec![self.last; h]
    }

    pub fn refilter(&self, y: &[f64]) -> Self {
        Self::fit(y)
    }
}

/// The last season, repeated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeasonalNaive {
    /// Season length asked for (the stored season may be shorter on short input).
    #[serde(default)]
    pub m: usize,
    pub last_season: Vec<f64>,
}

impl SeasonalNaive {
    pub fn fit(y: &[f64], m: usize) -> Self {
        let m = m.max(1);
        let take = m.min(y.len());
        Self {
            m,
            last_season: y[y.len() - take..].to_vec(),
        }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        if self.last_season.is_empty() {
            return vec![0.0; h];
        }
        (0..h)
            .map(|i| self.last_season[i % self.last_season.len()])
            .collect()
    }

    pub fn refilter(&self, y: &[f64]) -> Self {
        Self::fit(y, self.m)
    }
}

/// The last value plus the average change so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub last: f64,
    pub slope: f64,
}

impl Drift {
    pub fn fit(y: &[f64]) -> Self {
        let n = y.len();
        let last = y.last().copied().unwrap_or(0.0);
        let slope = if n > 1 {
            (last - y[0]) / (n - 1) as f64
        } else {
            0.0
        };
        Self { last, slope }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        (1..=h).map(|i| self.last + self.slope * i as f64).collect()
    }

    pub fn refilter(&self, y: &[f64]) -> Self {
        Self::fit(y)
    }
}

/// The mean of the series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mean {
    pub mean: f64,
}

impl Mean {
    pub fn fit(y: &[f64]) -> Self {
        // Mean of deviations from the first value: exact for a constant series
        // and free of overflow for huge magnitudes.
        let base = y.first().copied().unwrap_or(0.0);
        let dev = y.iter().map(|v| v - base).sum::<f64>() / y.len().max(1) as f64;
        Self { mean: base + dev }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        vec![self.mean; h]
    }

    pub fn refilter(&self, y: &[f64]) -> Self {
        Self::fit(y)
    }
}

/// Naive on the seasonally adjusted series: classical multiplicative
/// decomposition when the 90% autocorrelation test says the series is
/// seasonal (additive when some value is not positive), plain naive otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Naive2 {
    pub m: usize,
    /// Last seasonally adjusted value.
    pub last: f64,
    /// Length of the series the state was computed on (the seasonal phase).
    pub n: usize,
    pub season: Option<Seasonality>,
}

impl Naive2 {
    pub fn fit(y: &[f64], m: usize) -> Self {
        let m = m.max(1);
        let season = if is_seasonal(y, m) {
            Seasonality::classical(y, m)
        } else {
            None
        };
        Self::with_season(y, m, season)
    }

    fn with_season(y: &[f64], m: usize, season: Option<Seasonality>) -> Self {
        let n = y.len();
        let raw_last = y.last().copied().unwrap_or(0.0);
        let last = match &season {
            Some(s) if n > 0 => match s.kind {
                SeasonKind::Multiplicative => raw_last / s.index_at(n - 1),
                SeasonKind::Additive => raw_last - s.index_at(n - 1),
            },
            _ => raw_last,
        };
        let (last, season) = if last.is_finite() {
            (last, season)
        } else {
            (raw_last, None)
        };
        Self { m, last, n, season }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        let mut f = vec![self.last; h];
        if let Some(s) = &self.season {
            s.restore(&mut f, self.n);
        }
        if f.iter().all(|v| v.is_finite()) {
            f
        } else {
            vec![self.last; h]
        }
    }

    /// Keeps the seasonal indices, re-reads the last adjusted value of `y`.
    pub fn refilter(&self, y: &[f64]) -> Self {
        Self::with_season(y, self.m, self.season.clone())
    }
}

/// Simple exponential smoothing, alpha and initial level chosen by least
/// squares of the one-step errors (golden-section search on alpha).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ses {
    pub alpha: f64,
    pub level: f64,
}

impl Ses {
    pub fn fit(y: &[f64]) -> Self {
        if y.len() < 3 {
            return Self {
                alpha: 1.0,
                level: y.last().copied().unwrap_or(0.0),
            };
        }
        Self::fit_within(y, 0.0001, 0.9998)
    }

    /// [`Ses::fit`] with alpha searched in `[lo, lo + span]` (intermittent
    /// demand models keep it small). `y` must have at least 3 values.
    pub(crate) fn fit_within(y: &[f64], lo: f64, span: f64) -> Self {
        let sse = |alpha: f64| run_ses(y, alpha, y[0]).1;
        // Golden-section search; SSE in alpha is usually unimodal, and a
        // coarse scan first guards against local minima.
        let grid: Vec<f64> = (0..=20).map(|i| lo + span * i as f64 / 20.0).collect();
        let mut best = 0;
        let mut best_v = f64::INFINITY;
        for (i, &a) in grid.iter().enumerate() {
            let v = sse(a);
            if v < best_v {
                best_v = v;
                best = i;
            }
        }
        let mut lo = grid[best.saturating_sub(1)];
        let mut hi = grid[(best + 1).min(grid.len() - 1)];
        let g = 0.618_033_988_749_895;
        let mut c = hi - g * (hi - lo);
        let mut d = lo + g * (hi - lo);
        let (mut fc, mut fd) = (sse(c), sse(d));
        for _ in 0..40 {
            if fc < fd {
                hi = d;
                d = c;
                fd = fc;
                c = hi - g * (hi - lo);
                fc = sse(c);
            } else {
                lo = c;
                c = d;
                fc = fd;
                d = lo + g * (hi - lo);
                fd = sse(d);
            }
        }
        let alpha = if fc < fd { c } else { d };
        let alpha = if alpha.is_finite() { alpha } else { 0.5 };
        let level = run_ses(y, alpha, y[0]).0;
        Self {
            alpha,
            level: if level.is_finite() {
                level
            } else {
                y[y.len() - 1]
            },
        }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        vec![self.level; h]
    }

    pub fn refilter(&self, y: &[f64]) -> Self {
        let level = match y.first() {
            Some(&first) => run_ses(y, self.alpha, first).0,
            None => self.level,
        };
        Self {
            alpha: self.alpha,
            level: if level.is_finite() { level } else { 0.0 },
        }
    }
}

/// Final level and sum of squared one-step errors of SES.
pub(crate) fn run_ses(y: &[f64], alpha: f64, init: f64) -> (f64, f64) {
    let mut level = init;
    let mut sse = 0.0;
    for &v in &y[1.min(y.len())..] {
        let e = v - level;
        sse += e * e;
        level += alpha * e;
    }
    (level, sse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive2_is_naive_without_seasonality() {
        let y = [1.0, 3.0, 2.0, 5.0, 4.0];
        assert_eq!(Naive2::fit(&y, 1).forecast(3), vec![4.0; 3]);
        // Too short for the test (n < 3m): plain naive as well.
        assert_eq!(Naive2::fit(&y, 4).forecast(2), vec![4.0; 2]);
    }

    #[test]
    fn naive2_repeats_a_pure_seasonal_pattern() {
        let pattern = [10.0, 20.0, 30.0, 40.0];
        let y: Vec<f64> = (0..24).map(|t| pattern[t % 4]).collect();
        let f = Naive2::fit(&y, 4).forecast(8);
        for (i, v) in f.iter().enumerate() {
            assert!((v - pattern[i % 4]).abs() < 1e-9, "{f:?}");
        }
    }

    #[test]
    fn ses_finds_a_small_alpha_for_noise_and_one_for_a_walk() {
        // Alternating noise around 10: the best alpha is small.
        let noise: Vec<f64> = (0..60)
            .map(|t| 10.0 + if t % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let s = Ses::fit(&noise);
        assert!(s.alpha < 0.1, "{s:?}");
        assert!((s.level - 10.0).abs() < 0.5, "{s:?}");
        // A straight line: following the data as fast as possible is best.
        let line: Vec<f64> = (0..30).map(|t| t as f64).collect();
        assert!(Ses::fit(&line).alpha > 0.99);
    }

    #[test]
    fn drift_and_seasonal_naive_known_values() {
        let d = Drift::fit(&[1.0, 2.0, 4.0, 7.0]);
        assert_eq!(d.forecast(2), vec![9.0, 11.0]);
        let s = SeasonalNaive::fit(&[1.0, 2.0, 3.0, 4.0, 5.0], 2);
        assert_eq!(s.forecast(3), vec![4.0, 5.0, 4.0]);
        assert_eq!(s.refilter(&[7.0, 8.0, 9.0]).forecast(2), vec![8.0, 9.0]);
    }
}
