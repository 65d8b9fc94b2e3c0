//! Prediction intervals calibrated on the series' own rolling-origin errors
//! (split-conformal in spirit).
//!
//! At fit time the fitted model is re-run (`refilter`: same parameters, no
//! re-optimisation) on prefixes of the training series; from each origin it
//! forecasts up to the calibration horizon and the h-step errors are kept.
//! Their size as a function of h is summarised by a power law
//! `scale_h = s_1 · h^growth` (growth ≥ 0, so widths never shrink with the
//! horizon and extend sensibly beyond the calibrated steps), and the
//! distribution of the scaled errors by a few empirical quantiles, shrunk
//! towards the normal ones when there are few errors. Only these numbers are
//! stored. Series too short for rolling origins get a scale from their naive
//! errors with √h growth and deliberately generous quantiles.

use crate::models::State;
use serde::{Deserialize, Serialize};

/// Levels (percent) at which quantiles are stored; others are interpolated.
const GRID: [f64; 5] = [50.0, 80.0, 90.0, 95.0, 99.0];
/// Weight, in errors, of the normal prior in the quantile estimates.
const PRIOR_WEIGHT: f64 = 30.0;
/// Fewest rolling-origin errors for a calibrated (not fallback) band.
const MIN_ERRORS: usize = 6;
/// Widening for what in-sample calibration cannot see: the parameters were
/// fitted on the same data, and the future drifts more than the past.
const INFLATION: f64 = 1.0;
/// TEMPORARY tuning knobs (HORIZON_TUNE="inflation,small,growth_min,prior,origins_mult").
fn knob(i: usize, default: f64) -> f64 {
    static K: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let k = K.get_or_init(|| {
        std::env::var("HORIZON_TUNE")
            .ok()
            .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_default()
    });
    k.get(i)
        .copied()
        .filter(|v: &f64| v.is_finite())
        .unwrap_or(default)
}

/// Least growth exponent of the error scale: errors of a forecast grow at
/// least like a random walk's (√h) unless the data clearly say otherwise.
const MIN_GROWTH: f64 = 0.5;
/// Effective degrees of freedom per rolling origin for the Student-t
/// widening: errors of one origin at different steps are strongly correlated.
const DF_PER_ORIGIN: f64 = 0.2;
/// Quantile multiplier of the short-series fallback.
const FALLBACK_GENEROSITY: f64 = 1.3;

/// The stored interval calibration of a fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bands {
    /// Mean absolute h-step error at h = 1.
    pub scale1: f64,
    /// Exponent of the growth of the error scale with the horizon (≥ 0).
    pub growth: f64,
    /// Quantile of |error| / scale_h at each [`GRID`] level, divided by the
    /// half-normal quantile at that level (1.0 = normal errors).
    pub ratio: Vec<f64>,
    /// Number of rolling-origin errors behind the calibration (0 = fallback).
    pub errors: usize,
}

impl Bands {
    /// Calibrates the bands of `state` (fitted to `y` with season length `m`).
    pub fn calibrate(state: &State, y: &[f64], m: usize) -> Self {
        calibrate(state, y, m).unwrap_or_else(|| Self::fallback(y, m))
    }

    /// Half-widths of the central interval at `level` percent for steps 1..=h.
    /// Finite, non-negative and non-decreasing in the step.
    pub fn half_widths(&self, level: f64, h: usize) -> Vec<f64> {
        let q = half_normal_quantile(level) * self.ratio_at(level);
        let mut out = Vec::with_capacity(h);
        let mut prev: f64 = 0.0;
        for step in 1..=h {
            let w = q * self.scale1 * (step as f64).powf(self.growth);
            let w = if w.is_finite() && w > 0.0 { w } else { prev };
            prev = prev.max(w);
            out.push(prev);
        }
        out
    }

    fn ratio_at(&self, level: f64) -> f64 {
        if self.ratio.len() != GRID.len() {
            return 1.0;
        }
        if level <= GRID[0] {
            return self.ratio[0];
        }
        for i in 1..GRID.len() {
            if level <= GRID[i] {
                let w = (level - GRID[i - 1]) / (GRID[i] - GRID[i - 1]);
                return self.ratio[i - 1] * (1.0 - w) + self.ratio[i] * w;
            }
        }
        self.ratio[GRID.len() - 1]
    }

    /// Scale from naive (seasonal naive when the series covers two seasons)
    /// one-step errors, √h growth, generous quantiles.
    pub fn fallback(y: &[f64], m: usize) -> Self {
        let n = y.len();
        let lag = if m > 1 && n >= 2 * m { m } else { 1 };
        let scale1 = if n > lag {
            let s: f64 =
                (lag..n).map(|t| (y[t] - y[t - lag]).abs()).sum::<f64>() / (n - lag) as f64;
            if lag > 1 {
                // A seasonal difference spans a whole season of steps.
                s / (lag as f64).sqrt()
            } else {
                s
            }
        } else {
            // One point: nothing to learn from, say a tenth of its size.
            0.1 * y.first().map_or(0.0, |v| v.abs())
        };
        Self {
            scale1: finite_or_zero(scale1),
            growth: 0.5,
            ratio: vec![FALLBACK_GENEROSITY; GRID.len()],
            errors: 0,
        }
    }
}

/// Horizon up to which errors are measured: a season and a half, at least 8,
/// at most half the series.
fn calibration_horizon(n: usize, m: usize) -> usize {
    let want = (3 * m / 2).max(8).min(48);
    want.min(n / 2).max(1)
}

fn calibrate(state: &State, y: &[f64], m: usize) -> Option<Bands> {
    let n = y.len();
    let horizon = calibration_horizon(n, m);
    // Origins: the last ones, leaving at least half the series (and two
    // seasons, when seasonal) to re-filter on.
    let min_train = ((n as f64 * knob(5, 0.5)) as usize)
        .max(if m > 1 { 2 * m } else { 4 })
        .max(3);
    if n <= min_train + 2 {
        return None;
    }
    let max_origins = ((2 * horizon + 8) as f64 * knob(4, 1.0)) as usize;
    let first = min_train.max(n.saturating_sub(max_origins));
    // Per step: sum of |e|, count; and all (step, |e|) pairs.
    let mut sum = vec![0.0; horizon];
    let mut count = vec![0usize; horizon];
    let mut errors: Vec<(usize, f64)> = Vec::new();
    for k in first..n {
        let steps = horizon.min(n - k);
        let f = state.refilter(&y[..k]).forecast(steps);
        for (j, fv) in f.iter().enumerate() {
            let e = (y[k + j] - fv).abs();
            if !e.is_finite() {
                return None;
            }
            sum[j] += e;
            count[j] += 1;
            errors.push((j + 1, e));
        }
    }
    if errors.len() < MIN_ERRORS {
        return None;
    }
    // Weighted least squares of log MAE_h on log h.
    let mut pts: Vec<(f64, f64, f64)> = Vec::new();
    for h in 0..horizon {
        if count[h] > 0 && sum[h] > 0.0 {
            let mae = sum[h] / count[h] as f64;
            pts.push((((h + 1) as f64).ln(), mae.ln(), count[h] as f64));
        }
    }
    if pts.is_empty() {
        // Every error is zero: a perfectly predictable series.
        return Some(Bands {
            scale1: 0.0,
            growth: 0.0,
            ratio: vec![1.0; GRID.len()],
            errors: errors.len(),
        });
    }
    let wsum: f64 = pts.iter().map(|p| p.2).sum();
    let mx = pts.iter().map(|p| p.0 * p.2).sum::<f64>() / wsum;
    let my = pts.iter().map(|p| p.1 * p.2).sum::<f64>() / wsum;
    let sxx: f64 = pts.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
    let growth = if sxx > 1e-12 { sxy / sxx } else { 0.5 };
    let growth = growth.clamp(knob(2, MIN_GROWTH), 1.5);
    let scale1 = (my - growth * mx).exp();
    if !(scale1.is_finite() && scale1 > 0.0) {
        return None;
    }
    // Scaled absolute errors, and their quantiles shrunk to the normal ones.
    let mut z: Vec<f64> = errors
        .iter()
        .map(|&(h, e)| e / (scale1 * (h as f64).powf(growth)))
        .filter(|v| v.is_finite())
        .collect();
    if z.len() < MIN_ERRORS {
        return None;
    }
    z.sort_by(f64::total_cmp);
    let nz = z.len() as f64;
    let ratio = GRID
        .iter()
        .map(|&level| {
            let prior = half_normal_quantile(level);
            let emp = empirical_quantile(&z, level / 100.0) / prior;
            let pw = knob(3, PRIOR_WEIGHT);
            let r = (nz * emp + pw) / (nz + pw);
            let origins = (n - first) as f64;
            let df = origins * knob(6, DF_PER_ORIGIN);
            let t = if df > 0.0 {
                t_over_z(level, df.max(2.0))
            } else {
                1.0
            };
            finite_or(
                r * t * knob(0, INFLATION) * (1.0 + knob(1, 0.0) / origins),
                1.0,
            )
        })
        .collect::<Vec<f64>>();
    // Quantiles must grow with the level.
    let mut ratio = ratio;
    for i in 1..ratio.len() {
        let lo = ratio[i - 1] * half_normal_quantile(GRID[i - 1]) / half_normal_quantile(GRID[i]);
        if ratio[i] < lo {
            ratio[i] = lo;
        }
    }
    Some(Bands {
        scale1,
        growth,
        ratio,
        errors: errors.len(),
    })
}

/// Student-t over normal quantile at central level `level` percent with
/// `df` degrees of freedom (Cornish–Fisher expansion; df ≥ 2).
fn t_over_z(level: f64, df: f64) -> f64 {
    let z = crate::model::normal_quantile(0.5 + level.clamp(0.0, 99.9999) / 200.0);
    if z <= 0.0 {
        return 1.0;
    }
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    let t = z
        + (z3 + z) / (4.0 * df)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * df.powi(3));
    t / z
}

/// Linear-interpolated quantile of sorted data.
fn empirical_quantile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    let pos = p.clamp(0.0, 1.0) * (n - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    if i + 1 < n {
        sorted[i] * (1.0 - frac) + sorted[i + 1] * frac
    } else {
        sorted[n - 1]
    }
}

/// Quantile of |X| / E|X| for normal X at central level `level` percent:
/// z_{(1+L)/2} / sqrt(2/π).
fn half_normal_quantile(level: f64) -> f64 {
    let z = crate::model::normal_quantile(0.5 + level.clamp(0.0, 99.9999) / 200.0);
    z * (std::f64::consts::PI / 2.0).sqrt()
}

fn finite_or_zero(v: f64) -> f64 {
    finite_or(v, 0.0)
}

fn finite_or(v: f64, default: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        default
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::baselines::Naive;

    #[test]
    fn widths_never_shrink_and_grow_with_the_level() {
        let y: Vec<f64> = (0..80)
            .map(|t| (t as f64 * 0.9).sin() * 3.0 + (t as f64 * 0.31).cos())
            .collect();
        let state = State::Naive(Naive::fit(&y));
        let b = Bands::calibrate(&state, &y, 1);
        assert!(b.errors > 0);
        let w80 = b.half_widths(80.0, 30);
        let w95 = b.half_widths(95.0, 30);
        for i in 1..30 {
            assert!(w80[i] >= w80[i - 1] && w95[i] >= w95[i - 1]);
        }
        for (a, c) in w80.iter().zip(&w95) {
            assert!(c > a && a.is_finite() && *a > 0.0);
        }
    }

    #[test]
    fn short_series_use_the_fallback() {
        let b = Bands::calibrate(&State::Naive(Naive::fit(&[1.0, 3.0])), &[1.0, 3.0], 1);
        assert_eq!(b.errors, 0);
        assert!((b.scale1 - 2.0).abs() < 1e-12);
        let w = b.half_widths(95.0, 4);
        assert!(w[3] > w[0] && w.iter().all(|v| v.is_finite()));
        let one = Bands::calibrate(&State::Naive(Naive::fit(&[5.0])), &[5.0], 1);
        assert!(one.half_widths(95.0, 3).iter().all(|v| *v > 0.0));
    }

    #[test]
    fn calibrated_naive_on_a_random_walk_covers_about_right() {
        // Deterministic pseudo-random walk (LCG), checked on its own continuation.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let mut inside = 0;
        let mut total = 0;
        for _ in 0..200 {
            let mut y = vec![100.0];
            for _ in 0..70 {
                let last = y[y.len() - 1];
                y.push(last + next());
            }
            let (train, test) = y.split_at(60);
            let st = State::Naive(Naive::fit(train));
            let b = Bands::calibrate(&st, train, 1);
            let w = b.half_widths(95.0, test.len());
            for (j, v) in test.iter().enumerate() {
                total += 1;
                if (v - train[59]).abs() <= w[j] {
                    inside += 1;
                }
            }
        }
        let cov = inside as f64 / total as f64;
        assert!((0.88..=0.995).contains(&cov), "coverage {cov}");
    }
}
