//! Prediction intervals calibrated on the series' own rolling-origin errors
//! (split-conformal in spirit).
//!
//! At fit time the fitted model is re-run (`refilter`: same parameters, no
//! re-optimisation) on prefixes of the training series ending at origins
//! spread evenly over its second half ([`Origins::spread`]); from each origin
//! it forecasts up to the calibration horizon and the h-step errors are kept.
//! Their size as a function of h is summarised by the shape of the variance
//! of a state-space forecast, `scale_h² = v₀ + v₁·(h−1) + v₂·(h−1)²` with
//! every v ≥ 0 (noise, random-walk-like and trend-like growth), fitted by
//! non-negative least squares to the mean absolute h-step errors: widths
//! never shrink with the horizon and extend sensibly beyond the calibrated
//! steps. The distribution of the scaled errors is kept as a few empirical
//! quantiles, shrunk towards the normal ones when there are few errors and
//! widened by a Student-t factor, since the errors of one origin at
//! different steps are strongly correlated and the model was fitted on the
//! same data. Only these numbers are stored. Series too short for rolling
//! origins get a scale from their naive errors with √h growth and
//! deliberately generous quantiles.
//!
//! When the series ends in missing values, the forecast's first step is
//! g + 1 steps after the last observation (g gaps): its widths are those of
//! steps g + 1, …, g + h ([`Bands::shifted`]; the models forecast across the
//! gaps, see `ModelSpec::fit`).

use crate::models::State;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Levels (percent) at which quantiles are stored; others are interpolated.
const GRID: [f64; 5] = [50.0, 80.0, 90.0, 95.0, 99.0];
/// Weight, in errors, of the normal prior in the quantile estimates.
const PRIOR_WEIGHT: f64 = 30.0;
/// Fewest rolling-origin errors for a calibrated (not fallback) band.
const MIN_ERRORS: usize = 6;
/// Effective degrees of freedom per rolling origin for the Student-t
/// widening: errors of one origin at different steps are strongly correlated.
const DF_PER_ORIGIN: f64 = 0.15;
/// Longest prefix re-filtered at each origin (see [`calibrate`]).
const REFILTER_WINDOW: usize = 2_000;
/// Series at least this long are calibrated on every few origins only (at
/// most [`LONG_SERIES_ORIGINS`]): neighbouring origins give nearly the same
/// errors, and each re-filter of a long series is costly.
const LONG_SERIES: usize = 1_000;
const LONG_SERIES_ORIGINS: usize = 26;
/// Least growth of the squared error scale per calibration horizon, as a
/// fraction of the one-step one (see [`bands_from`]).
const MIN_GROWTH: f64 = 0.01;
/// Quantile multiplier of the short-series fallback.
const FALLBACK_GENEROSITY: f64 = 1.3;

/// The stored interval calibration of a fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bands {
    /// Squared scale of the error at forecast step h: `var[0] + var[1]·(h−1) +
    /// var[2]·(h−1)²`, every coefficient ≥ 0 (noise, random-walk and
    /// trend-like growth); shifted when the series ends in gaps (see
    /// [`Bands::shifted`]).
    pub var: [f64; 3],
    /// Quantile of |error| / scale_h at each [`GRID`] level, divided by the
    /// half-normal quantile at that level (1.0 = normal errors).
    pub ratio: Vec<f64>,
    /// Number of rolling-origin errors behind the calibration (0 = fallback).
    pub errors: usize,
}

impl Bands {
    /// Calibrates the bands of `state` (fitted to `y` with season length `m`).
    pub fn calibrate(state: &State, y: &[f64], m: usize) -> Self {
        Self::calibrate_with_gaps(state, y, m, &[])
    }

    /// [`Bands::calibrate`] on a series whose gaps were filled:
    /// `missing[t]` marks a filled value, which is re-filtered like the
    /// others but never scored as an outcome (an interpolated point is
    /// easy to forecast and would make the bands too narrow).
    pub fn calibrate_with_gaps(state: &State, y: &[f64], m: usize, missing: &[bool]) -> Self {
        calibrate(state, y, m, missing).unwrap_or_else(|| Self::fallback(y, m))
    }

    /// The bands of a forecast whose first step lies `steps` further from
    /// the last observation: its widths are those of steps `1 + steps`,
    /// `2 + steps`, … (after `steps` missing values at the end of the
    /// series). `scale_h²` is a polynomial in h, so the shifted one is again
    /// one with coefficients ≥ 0. A negative `steps` undoes an earlier shift;
    /// bands that had not been shifted that far (stored by an engine without
    /// the shift) are kept as they are rather than narrowed below their
    /// calibration.
    pub fn shifted(&self, steps: i64) -> Self {
        let d = steps as f64;
        let [v0, v1, v2] = self.var;
        let var = [v0 + v1 * d + v2 * d * d, v1 + 2.0 * v2 * d, v2];
        // Rounding may leave an exact undo a hair below zero.
        let tolerance = 1e-9 * (v0.abs() + (v1 * d).abs() + (v2 * d * d).abs());
        if var.iter().any(|v| !v.is_finite() || *v < -tolerance) {
            return self.clone();
        }
        Self {
            var: var.map(|v| v.max(0.0)),
            ..self.clone()
        }
    }

    /// Half-widths of the central interval at `level` percent for steps 1..=h.
    /// Finite, non-negative and non-decreasing in the step.
    pub fn half_widths(&self, level: f64, h: usize) -> Vec<f64> {
        let q = half_normal_quantile(level) * self.ratio_at(level);
        let mut out = Vec::with_capacity(h);
        let mut prev: f64 = 0.0;
        for step in 1..=h {
            let w = q * self.scale_at(step);
            let w = if w.is_finite() && w > 0.0 { w } else { prev };
            prev = prev.max(w);
            out.push(prev);
        }
        out
    }

    /// Mean absolute rolling-origin error over the calibration horizon of a
    /// series of `n` points with shortest season `m`; `None` for a fallback
    /// band (no errors measured). Compares models fitted to the same series.
    pub fn validation_error(&self, n: usize, m: usize) -> Option<f64> {
        if self.errors == 0 {
            return None;
        }
        let h = calibration_horizon(n, m);
        let mean = (1..=h).map(|s| self.scale_at(s)).sum::<f64>() / h as f64;
        mean.is_finite().then_some(mean)
    }

    /// Error scale (mean absolute error) at `step` ≥ 1.
    fn scale_at(&self, step: usize) -> f64 {
        scale_from(&self.var, step)
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
            // A random walk: the squared scale grows linearly.
            var: [
                finite_or_zero(scale1 * scale1),
                finite_or_zero(scale1 * scale1),
                0.0,
            ],
            ratio: vec![FALLBACK_GENEROSITY; GRID.len()],
            errors: 0,
        }
    }
}

/// Horizon up to which errors are measured: a season and a half, 8 to 48,
/// at most half the series.
fn calibration_horizon(n: usize, m: usize) -> usize {
    let want = (3 * m / 2).clamp(8, 48);
    want.min(n / 2).max(1)
}

/// Where the rolling-origin errors are measured for a series of `n` points
/// with shortest season `m`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Origins {
    /// Steps forecast from each origin.
    pub horizon: usize,
    /// Training lengths at which the model is re-filtered and forecast.
    pub at: Vec<usize>,
    /// Degrees of freedom of the Student-t widening.
    pub df: f64,
    /// Whether the bands from these origins are stored, and so used beyond
    /// the calibrated steps ([`Origins::spread`]), rather than only compared
    /// over them ([`Origins::tail`], [`Bands::validation_error`]): their
    /// variance shape keeps a quadratic term only when the errors support it
    /// (see [`fit_variance`]).
    pub extrapolated: bool,
}

impl Origins {
    /// Origins spread evenly over the second half of the series (leaving at
    /// least two seasons to re-filter on): the errors come from every part
    /// of the recent history (every day of the week on hourly data, calm and
    /// rough stretches alike), not only from its last few steps, which can
    /// be unusually calm or rough. As many origins as [`Origins::tail`]
    /// (the cost stays the same), and the same Student-t degrees of freedom,
    /// which reflect how few and how correlated the errors are.
    pub fn spread(n: usize, m: usize) -> Option<Self> {
        let tail = Self::tail(n, m)?;
        let first = min_train(n, m);
        let count = tail.at.len().max(1);
        let stride = (n - first).div_ceil(count).max(1);
        let at = (first..n)
            .filter(|k| (n - 1 - k).is_multiple_of(stride))
            .collect();
        Some(Self {
            at,
            extrapolated: true,
            ..tail
        })
    }

    /// The last origins (on long series every few of them): the errors of
    /// the model right now, which `auto` compares its candidates by.
    pub fn tail(n: usize, m: usize) -> Option<Self> {
        Self::tail_covering(n, m, 0)
    }

    /// [`Origins::tail`] over at least the last `cycle` points, every few of
    /// them when that is longer than the usual tail (as many origins as on a
    /// long series). `auto` compares a candidate that models only the
    /// shortest season with one that models all of them: over a tail shorter
    /// than the longest season the first can look as good as the second,
    /// because the part of the week (or year) it gets wrong is not in it
    /// (half-hourly demand compared over its last two days).
    pub fn tail_covering(n: usize, m: usize, cycle: usize) -> Option<Self> {
        let horizon = calibration_horizon(n, m);
        let min_train = min_train(n, m);
        if n <= min_train + 2 {
            return None;
        }
        let usual = 2 * horizon + 8;
        let max_origins = usual.max(cycle);
        let first = min_train.max(n.saturating_sub(max_origins));
        let stride = if n >= LONG_SERIES || max_origins > usual {
            (n - first).div_ceil(LONG_SERIES_ORIGINS).max(1)
        } else {
            1
        };
        let at = (first..n)
            .filter(|k| (n - 1 - k).is_multiple_of(stride))
            .collect();
        Some(Self {
            horizon,
            at,
            df: ((n - first) as f64 * DF_PER_ORIGIN).max(2.0),
            extrapolated: false,
        })
    }

    /// The forecasts of `state` (fitted to `y`, shortest season `m`) from
    /// every origin, re-filtered on the data before it (the origins side by
    /// side on rayon's pool; the order of the result is that of the origins).
    pub fn forecasts(&self, state: &State, y: &[f64], m: usize) -> Vec<Vec<f64>> {
        let n = y.len();
        // Long enough for MSTL to estimate its longest season again: with
        // less it leaves that season out at the origin.
        let window = REFILTER_WINDOW.max(state.refilter_span());
        self.at
            .par_iter()
            .map(|&k| {
                // On long series re-filter only a recent window (starting at
                // a whole number of seasons, so seasonal phases stay right):
                // the states forget the distant past anyway, and the cost
                // stays bounded.
                let start = k.saturating_sub(window) / m.max(1) * m.max(1);
                state
                    .refilter(&y[start..k])
                    .forecast(self.horizon.min(n - k))
            })
            .collect()
    }

    /// The bands from the forecasts of [`Origins::forecasts`] (or any
    /// combination of them); `None` when too few errors are usable.
    pub fn bands(&self, y: &[f64], forecasts: &[Vec<f64>], missing: &[bool]) -> Option<Bands> {
        bands_from(self, y, forecasts, missing)
    }
}

/// Points kept for re-filtering before the first origin: half the series,
/// and two seasons when seasonal.
fn min_train(n: usize, m: usize) -> usize {
    (n / 2).max(if m > 1 { 2 * m } else { 4 })
}

fn calibrate(state: &State, y: &[f64], m: usize, missing: &[bool]) -> Option<Bands> {
    let origins = Origins::spread(y.len(), m)?;
    let forecasts = origins.forecasts(state, y, m);
    origins.bands(y, &forecasts, missing)
}

fn bands_from(
    origins: &Origins,
    y: &[f64],
    forecasts: &[Vec<f64>],
    missing: &[bool],
) -> Option<Bands> {
    let horizon = origins.horizon;
    // Per step: sum of |e|, count; and all (step, |e|) pairs.
    let mut sum = vec![0.0; horizon];
    let mut count = vec![0usize; horizon];
    let mut errors: Vec<(usize, f64)> = Vec::new();
    for (&k, f) in origins.at.iter().zip(forecasts) {
        for (j, fv) in f.iter().enumerate().take(horizon) {
            if k + j >= y.len() || missing.get(k + j).copied().unwrap_or(false) {
                continue;
            }
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
    // (h − 1, MAE_h², number of errors) for the variance-shape fit.
    let mut pts: Vec<(f64, f64, f64)> = Vec::new();
    for h in 0..horizon {
        if count[h] > 0 && sum[h] > 0.0 {
            let mae = sum[h] / count[h] as f64;
            pts.push((h as f64, mae * mae, count[h] as f64));
        }
    }
    if pts.is_empty() {
        // Every error is zero: a perfectly predictable series.
        return Some(Bands {
            var: [0.0; 3],
            ratio: vec![1.0; GRID.len()],
            errors: errors.len(),
        });
    }
    let mut var = fit_variance(&pts, origins.extrapolated)?;
    if var[1] == 0.0 && var[2] == 0.0 {
        // Errors that did not grow over the calibrated steps still grow
        // beyond them (the level and the parameters are uncertain): a little
        // random-walk growth, 1% of the variance per calibration horizon.
        var[1] = var[0] * MIN_GROWTH / horizon as f64;
    }
    // Scaled absolute errors, and their quantiles shrunk to the normal ones.
    let mut z: Vec<f64> = errors
        .iter()
        .map(|&(h, e)| e / scale_from(&var, h))
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
            let r = (nz * emp + PRIOR_WEIGHT) / (nz + PRIOR_WEIGHT);
            // Student-t widening for the few, correlated errors behind the scale.
            finite_or(r * t_over_z(level, origins.df), 1.0)
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
        var,
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

fn scale_from(var: &[f64; 3], step: usize) -> f64 {
    let x = step.saturating_sub(1) as f64;
    (var[0] + var[1] * x + var[2] * x * x).max(0.0).sqrt()
}

/// Terms (1, h−1, (h−1)²) of the candidate variance shapes, simplest first:
/// flat, random-walk-like, trend-like, both.
const SHAPES: [[bool; 3]; 4] = [
    [true, false, false],
    [true, true, false],
    [true, false, true],
    [true, true, true],
];
/// Significance level of the F-test that keeps a quadratic (trend-like)
/// growth term in stored bands (see [`fit_variance`]).
const QUADRATIC_TEST_LEVEL: f64 = 0.05;

/// Non-negative weighted least squares of MAE_h² on (1, h−1, (h−1)²): the
/// best fit among the subsets of terms whose coefficients are all ≥ 0.
///
/// With `extrapolated` (bands that are stored, and so used beyond the
/// calibrated steps), a quadratic term must also pass a nested F-test
/// against the best flat or linear shape: the few mean errors of a
/// stationary series often bend upwards by chance, and a quadratic fitted to
/// that noise makes the width grow like h far ahead (thousands of times the
/// one-step width at h = 10,000 on white noise). A quadratic that fails the
/// test is replaced by its chord over the calibrated steps: the same squared
/// scale at the first and last calibrated step, at least as wide between
/// them, and growing linearly (the width like √h) beyond them.
fn fit_variance(pts: &[(f64, f64, f64)], extrapolated: bool) -> Option<[f64; 3]> {
    // Rescale so that the normal equations are well conditioned.
    let ymax = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    if !(ymax > 0.0 && ymax.is_finite()) {
        return None;
    }
    let xmax = pts.iter().map(|p| p.0).fold(1.0, f64::max);
    let scaled: Vec<(f64, f64, f64)> = pts
        .iter()
        .map(|&(x, y, w)| (x / xmax, y / ymax, w))
        .collect();
    let best = fit_shape(&scaled, [true; 3])?;
    let mut c = best.0;
    if extrapolated && c[2] > 0.0 {
        let supported = fit_shape(&scaled, [true, true, false])
            .is_none_or(|simpler| significantly_better(&best, &simpler, scaled.len()));
        if !supported {
            // The chord of the quadratic from x = 0 to x = 1 (the last step).
            c = [c[0], c[1] + c[2], 0.0];
        }
    }
    Some([c[0] * ymax, c[1] * ymax / xmax, c[2] * ymax / (xmax * xmax)])
}

/// Nested F-test at [`QUADRATIC_TEST_LEVEL`] of the fit (coefficients, SSE)
/// `rich` against `poor`, on `n` points. The critical value is the one-term
/// one (t²), a little stricter when `rich` has two more terms; with fewer
/// than two residual degrees of freedom nothing is significant.
fn significantly_better(rich: &([f64; 3], f64), poor: &([f64; 3], f64), n: usize) -> bool {
    let terms = |c: &[f64; 3]| c.iter().filter(|v| **v > 0.0).count().max(1);
    let (kr, kp) = (terms(&rich.0), terms(&poor.0));
    if kr <= kp || n < kr + 2 {
        return false;
    }
    let df = (n - kr) as f64;
    let f = (poor.1 - rich.1) / (kr - kp) as f64 / (rich.1 / df).max(f64::MIN_POSITIVE);
    let level = 100.0 * (1.0 - QUADRATIC_TEST_LEVEL);
    let t = crate::model::normal_quantile(0.5 + level / 200.0) * t_over_z(level, df);
    f > t * t
}

fn eval(c: &[f64; 3], x: f64) -> f64 {
    c[0] + c[1] * x + c[2] * x * x
}

/// Best non-negative weighted least-squares fit (and its SSE) of `pts`
/// among the subsets of [`SHAPES`] allowed by `shape`.
fn fit_shape(pts: &[(f64, f64, f64)], shape: [bool; 3]) -> Option<([f64; 3], f64)> {
    let mut best: Option<([f64; 3], f64)> = None;
    for terms in SHAPES {
        if (0..3).any(|i| terms[i] && !shape[i]) {
            continue;
        }
        let idx: Vec<usize> = (0..3).filter(|&i| terms[i]).collect();
        let k = idx.len();
        let basis = |x: f64, i: usize| x.powi(i as i32);
        let mut a = vec![vec![0.0; k + 1]; k];
        for &(x, y, w) in pts {
            for r in 0..k {
                for c in 0..k {
                    a[r][c] += w * basis(x, idx[r]) * basis(x, idx[c]);
                }
                a[r][k] += w * basis(x, idx[r]) * y;
            }
        }
        let Some(sol) = solve(a) else { continue };
        if sol.iter().any(|v| *v < 0.0 || !v.is_finite()) || sol[0] <= 0.0 {
            continue;
        }
        let mut coef = [0.0; 3];
        for (j, &i) in idx.iter().enumerate() {
            coef[i] = sol[j];
        }
        let sse: f64 = pts
            .iter()
            .map(|&(x, y, w)| w * (y - eval(&coef, x)).powi(2))
            .sum();
        if best.as_ref().is_none_or(|b| sse < b.1) {
            best = Some((coef, sse));
        }
    }
    best
}

/// Gaussian elimination with partial pivoting on an augmented k×(k+1) matrix.
pub(crate) fn solve(mut a: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let k = a.len();
    for col in 0..k {
        let piv = (col..k).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        let (top, bottom) = a.split_at_mut(col + 1);
        let pivot = &top[col];
        for row in bottom.iter_mut() {
            let f = row[col] / pivot[col];
            for (dst, src) in row[col..].iter_mut().zip(&pivot[col..]) {
                *dst -= f * src;
            }
        }
    }
    let mut x = vec![0.0; k];
    for r in (0..k).rev() {
        let s: f64 = (r + 1..k).map(|c| a[r][c] * x[c]).sum();
        x[r] = (a[r][k] - s) / a[r][r];
    }
    Some(x)
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
    fn variance_shape_is_recovered_and_kept_non_negative() {
        // MAE_h² = 4 + 2(h−1) + 0.5(h−1)², exactly.
        let pts: Vec<(f64, f64, f64)> = (0..10)
            .map(|x| (x as f64, 4.0 + 2.0 * x as f64 + 0.5 * (x * x) as f64, 5.0))
            .collect();
        let v = fit_variance(&pts, true).unwrap();
        for (got, want) in v.iter().zip([4.0, 2.0, 0.5]) {
            assert!((got - want).abs() < 1e-9, "{v:?}");
        }
        // Errors that shrink with the horizon: no negative growth is fitted.
        let falling: Vec<(f64, f64, f64)> =
            (0..6).map(|x| (x as f64, 10.0 - x as f64, 3.0)).collect();
        let v = fit_variance(&falling, true).unwrap();
        assert!(v.iter().all(|c| *c >= 0.0), "{v:?}");
        assert!(scale_from(&v, 6) >= scale_from(&v, 1));
    }

    #[test]
    fn an_unsupported_quadratic_is_not_extrapolated() {
        // Flat mean errors with noise that bends upwards at the last steps
        // (white noise, mean method, one seed): the best fit has a quadratic
        // term, which the F-test does not support for stored bands.
        let noisy: Vec<(f64, f64, f64)> = [0.49, 0.44, 0.59, 0.51, 0.48, 0.74, 0.68, 1.0]
            .iter()
            .enumerate()
            .map(|(x, y)| (x as f64, *y, 26.0))
            .collect();
        let scored = fit_variance(&noisy, false).unwrap();
        assert!(scored[2] > 0.0, "{scored:?}");
        let stored = fit_variance(&noisy, true).unwrap();
        assert_eq!(stored[2], 0.0, "{stored:?}");
        // Its chord: the same at the first and last step, linear beyond.
        let at = |v: &[f64; 3], x: f64| v[0] + v[1] * x + v[2] * x * x;
        assert!((at(&stored, 0.0) - at(&scored, 0.0)).abs() < 1e-12);
        assert!((at(&stored, 7.0) - at(&scored, 7.0)).abs() < 1e-12);
        assert!(at(&stored, 1000.0) < at(&scored, 1000.0) / 50.0);
        // A clear quadratic (trend-like growth) is kept.
        let trend: Vec<(f64, f64, f64)> = (0..8)
            .map(|x| {
                (
                    x as f64,
                    1.0 + 0.3 * (x * x) as f64 * (1.0 + 0.02 * (x % 2) as f64),
                    26.0,
                )
            })
            .collect();
        assert!(fit_variance(&trend, true).unwrap()[2] > 0.0);
    }

    #[test]
    fn filled_values_are_not_scored() {
        // A noisy series whose last stretch was interpolated: a straight
        // run that naive forecasts well. Scored, it would shrink the bands.
        let mut y: Vec<f64> = (0..80)
            .map(|t| (t as f64 * 1.3).sin() * 4.0 + (t as f64 * 0.7).cos())
            .collect();
        let mut missing = vec![false; 80];
        for t in 60..79 {
            y[t] = y[59] + (y[79] - y[59]) * (t - 59) as f64 / 20.0;
            missing[t] = true;
        }
        let state = State::Naive(Naive::fit(&y));
        let all = Bands::calibrate(&state, &y, 1);
        let observed = Bands::calibrate_with_gaps(&state, &y, 1, &missing);
        assert_eq!(Bands::calibrate_with_gaps(&state, &y, 1, &[false; 80]), all);
        assert!(observed.errors < all.errors, "{observed:?} {all:?}");
        assert!(observed.half_widths(95.0, 1)[0] > all.half_widths(95.0, 1)[0]);
    }

    #[test]
    fn shifted_bands_give_the_widths_of_later_steps() {
        let b = Bands {
            var: [4.0, 1.5, 0.25],
            ratio: vec![1.1; GRID.len()],
            errors: 40,
        };
        let later = b.half_widths(95.0, 20);
        let shifted = b.shifted(7);
        for (got, want) in shifted.half_widths(95.0, 13).iter().zip(&later[7..]) {
            assert!((got - want).abs() <= 1e-12 * want, "{got} {want}");
        }
        // Undone up to rounding, also for a random-walk band.
        let walk = Bands::fallback(&[1.0, 3.0, 2.0, 5.0], 1);
        for (band, steps) in [(&b, 7), (&walk, 3)] {
            let back = band.shifted(steps).shifted(-steps);
            for (got, want) in back.var.iter().zip(&band.var) {
                assert!((got - want).abs() <= 1e-12 * band.var[0], "{:?}", back.var);
            }
        }
        // A band never shifted that far is not narrowed below its calibration.
        assert_eq!(walk.shifted(-3), walk);
    }

    #[test]
    fn the_tail_can_cover_a_whole_cycle_with_as_many_origins() {
        // Half-hourly, ten weeks: the usual tail is the last 104 points.
        let n = 3360;
        let usual = Origins::tail(n, 48).unwrap();
        assert_eq!(Origins::tail_covering(n, 48, 48), Some(usual.clone()));
        assert!(n - usual.at[0] <= 104);
        let week = Origins::tail_covering(n, 48, 336).unwrap();
        assert!(n - week.at[0] > 300, "first origin {}", week.at[0]);
        assert!(week.at.len() <= LONG_SERIES_ORIGINS + 1);
        assert_eq!(week.at.last(), Some(&(n - 1)));
        // A short series gets a stride too rather than one origin per point.
        let daily = Origins::tail_covering(730, 7, 365).unwrap();
        assert!(
            daily.at.len() <= LONG_SERIES_ORIGINS + 1,
            "{}",
            daily.at.len()
        );
    }

    #[test]
    fn origins_re_filter_enough_for_a_long_second_season() {
        // Seasons 12 and 1,100: the usual 2,000-point window holds less than
        // two cycles of the long one, whose re-estimate then went missing
        // and whose stored cycle came in at the phase of the series' end.
        let wave = |t: usize, p: f64| (2.0 * std::f64::consts::PI * t as f64 / p).sin();
        let y: Vec<f64> = (0..4_400)
            .map(|t| 50.0 + 3.0 * wave(t, 12.0) + 10.0 * wave(t, 1_100.0))
            .collect();
        let fit =
            crate::models::mstl::Mstl::fit(&y, &[12, 1_100], &|y| Ok(State::Naive(Naive::fit(y))))
                .unwrap();
        let state = State::Mstl(fit);
        let origins = Origins::spread(y.len(), 12).unwrap();
        let paths = origins.forecasts(&state, &y, 12);
        for (k, path) in origins.at.iter().zip(&paths) {
            for (i, f) in path.iter().enumerate() {
                let err = (f - y[k + i]).abs();
                assert!(err < 0.5, "origin {k} step {}: error {err}", i + 1);
            }
        }
    }

    #[test]
    fn short_series_use_the_fallback() {
        let b = Bands::calibrate(&State::Naive(Naive::fit(&[1.0, 3.0])), &[1.0, 3.0], 1);
        assert_eq!(b.errors, 0);
        assert!((b.scale_at(1) - 2.0).abs() < 1e-12);
        let w = b.half_widths(95.0, 4);
        assert!(w[3] > w[0] && w.iter().all(|v| v.is_finite()));
        let one = Bands::calibrate(&State::Naive(Naive::fit(&[5.0])), &[5.0], 1);
        assert!(one.half_widths(95.0, 3).iter().all(|v| *v > 0.0));
    }

    #[test]
    fn calibrated_naive_on_a_random_walk_covers_about_right() {
        // Deterministic pseudo-random walk (LCG), checked on its own continuation.
        let mut rng = crate::test_support::Lcg(12345);
        let mut next = || rng.centred();
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
