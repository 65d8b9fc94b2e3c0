//! Dynamic harmonic regression: Fourier terms for the seasons, ARIMA errors
//! (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd
//! ed., §10.5 "Dynamic harmonic regression"; Young, Pedregal & Tych 1999).
//!
//! `y_t = c + Σ_j Σ_{k ≤ K_j} [a_jk cos(2πkt/m_j) + b_jk sin(2πkt/m_j)] + η_t`,
//! with η an automatic non-seasonal ARIMA ([`super::arima`]). Each season
//! costs only 2·K_j coefficients whatever its length, so it carries seasons
//! of any length (365 for daily data, 8,766 for hourly data with a yearly
//! cycle), and the seasonal shape is smooth. Two kinds of terms are left out
//! because they would repeat a regressor (see `terms`): the sine of the
//! harmonic k = m/2 of an even season (sin(πt) = 0), and a harmonic whose
//! frequency k/m is already in the design from a shorter season (the
//! harmonic 2 of 14 is the harmonic 1 of 7).
//!
//! Estimation is in two steps (not the joint likelihood of the book's
//! `ARIMA(y ~ fourier(K))`): the Fourier coefficients by least squares with
//! an intercept and a linear trend (so that a trend does not leak into them),
//! the numbers of harmonics K_j by the AICc of that regression over a small
//! grid; then the ARIMA is chosen and estimated on `y` minus the intercept
//! and the Fourier part (trend and level are the ARIMA's business: it may
//! difference and take a drift). `refilter` keeps the K_j and the ARIMA's
//! orders and coefficients, re-estimates the (linear, cheap) Fourier
//! coefficients on the new data, and re-filters the ARIMA.

use super::{arima::Arima, mstl};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// Most harmonics per season (FPP's examples stop around 10 for a yearly
/// season of daily data); never more than m/2 (see [`max_harmonics`]).
const MAX_HARMONICS: usize = 10;
/// Residuals of the regression within this fraction of the largest |y| are
/// rounding (an exact fit).
const ROUNDING: f64 = 1e-12;
/// The regression and the ARIMA are fitted on at most this many recent points
/// (at least two cycles of the longest season).
const WINDOW: usize = mstl::ADJUSTED_WINDOW;

/// A fitted dynamic harmonic regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dhr {
    /// Season lengths, ascending.
    pub periods: Vec<usize>,
    /// Harmonics K_j of each season (same order as `periods`).
    pub harmonics: Vec<usize>,
    /// Intercept, then per season and harmonic k = 1..=K_j: cos, sin (only
    /// cos for k = m/2; nothing for a harmonic whose frequency an earlier
    /// season already has: see `terms`).
    pub coef: Vec<f64>,
    /// Time index (in the regression's own clock) of the first forecast step.
    pub next_t: usize,
    /// The ARIMA of the regression errors.
    pub errors: Arima,
}

impl Dhr {
    /// Fits the model with every season of `seasons` the data can carry
    /// (two cycles). Without any, it is a plain ARIMA with an intercept.
    pub fn fit(y: &[f64], seasons: &[usize]) -> Result<Self, String> {
        if y.len() < 4 {
            return Err(format!("{} observations are too few", y.len()));
        }
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(format!("value at index {i} is not finite"));
        }
        let periods = mstl::usable_periods(seasons, y.len());
        let w = window(y, &periods);
        let harmonics = choose_harmonics(w, &periods);
        let (coef, resid) = regress(w, &periods, &harmonics)
            .ok_or_else(|| "the Fourier regression is singular".to_string())?;
        let errors = Arima::fit(&resid, 1)?;
        Ok(Self {
            periods,
            harmonics,
            coef,
            next_t: w.len(),
            errors,
        })
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        let e = self.errors.forecast(h);
        let terms = terms(&self.periods, &self.harmonics);
        let mut row = Vec::with_capacity(self.coef.len());
        (0..h)
            .map(|i| {
                let t = self.next_t + i;
                let v = self.seasonal_at(t, &terms, &mut row) + e.get(i).copied().unwrap_or(0.0);
                if v.is_finite() {
                    v
                } else {
                    self.coef.first().copied().unwrap_or(0.0)
                }
            })
            .collect()
    }

    pub fn describe(&self) -> String {
        let k: Vec<String> = self
            .periods
            .iter()
            .zip(&self.harmonics)
            .map(|(m, k)| format!("{m}:{k}"))
            .collect();
        format!(
            "DHR(fourier {}; errors: {})",
            if k.is_empty() {
                "none".to_string()
            } else {
                k.join(",")
            },
            self.errors.describe()
        )
    }

    /// Same harmonics and ARIMA; Fourier coefficients re-estimated on `y`
    /// and the ARIMA re-filtered on its errors. Keeps the stored model when
    /// `y` is too short for the regression.
    pub fn refilter(&self, y: &[f64]) -> Self {
        let w = window(y, &self.periods);
        if w.len() <= self.coef.len() + 2 || w.iter().any(|v| !v.is_finite()) {
            return self.clone();
        }
        match regress(w, &self.periods, &self.harmonics) {
            Some((coef, resid)) => Self {
                coef,
                next_t: w.len(),
                errors: self.errors.refilter(&resid),
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    /// Intercept plus the Fourier part at time `t`, given the model's
    /// [`terms`] and a row to fill.
    fn seasonal_at(&self, t: usize, terms: &[Term], row: &mut Vec<f64>) -> f64 {
        fourier_row(t, terms, row);
        row.iter().zip(&self.coef).map(|(x, c)| x * c).sum()
    }
}

/// The recent part of `y` the model is fitted on.
fn window<'a>(y: &'a [f64], periods: &[usize]) -> &'a [f64] {
    let longest = periods.last().copied().unwrap_or(1);
    let keep = WINDOW.max(2 * longest);
    &y[y.len().saturating_sub(keep)..]
}

/// One Fourier term of the design: the harmonic `k` of the season `m`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Term {
    m: usize,
    k: usize,
}

impl Term {
    /// The harmonic m/2 of an even season has no sine (sin(πt) = 0).
    fn has_sine(self) -> bool {
        2 * self.k != self.m
    }

    /// Its number of regressors: cos and sin, or cos alone.
    fn width(self) -> usize {
        1 + usize::from(self.has_sine())
    }

    /// Same frequency k/m (exactly, in integers).
    fn same_frequency(self, other: Term) -> bool {
        self.k * other.m == other.k * self.m
    }
}

/// The Fourier terms of `harmonics` in design order: per season (ascending)
/// k = 1..=K_j, leaving out a harmonic whose frequency k/m equals that of a
/// term already included from an earlier season (the harmonic 2 of 14 is
/// the harmonic 1 of 7; both regressors would be the same column). Without
/// such repeats this is every harmonic, the layout of [`Dhr::coef`].
fn terms(periods: &[usize], harmonics: &[usize]) -> Vec<Term> {
    let mut out: Vec<Term> = Vec::new();
    for (&m, &kk) in periods.iter().zip(harmonics) {
        // The harmonics of one season have distinct frequencies.
        let earlier = out.len();
        for k in 1..=kk {
            let term = Term { m, k };
            if !out[..earlier].iter().any(|e| e.same_frequency(term)) {
                out.push(term);
            }
        }
    }
    out
}

/// Regressors at time `t`: 1, then per term cos and (unless k = m/2) sin.
fn fourier_row(t: usize, terms: &[Term], row: &mut Vec<f64>) {
    row.clear();
    row.push(1.0);
    for &term in terms {
        let Term { m, k } = term;
        // The phase of t within the cycle, exactly (no loss for large t).
        let phase = 2.0 * PI * (t % m) as f64 / m as f64;
        let a = phase * k as f64;
        row.push(a.cos());
        if term.has_sine() {
            row.push(a.sin());
        }
    }
}

/// Harmonics k ≤ m/2 (for an even m the harmonic m/2 is the single
/// regressor cos(πt)), at most [`MAX_HARMONICS`].
fn max_harmonics(m: usize) -> usize {
    (m / 2).min(MAX_HARMONICS)
}

/// Normal equations of the regression of `y` on the Fourier `terms` (in
/// [`choose_harmonics`] those of the most harmonics of every season), plus a
/// centred linear trend as the last column: (X'X, X'y, y'y). Sub-models are
/// sub-matrices of these.
fn gram(y: &[f64], terms: &[Term]) -> (Vec<Vec<f64>>, Vec<f64>, f64) {
    let n = y.len();
    let mut row = Vec::new();
    fourier_row(0, terms, &mut row);
    let p = row.len() + 1;
    let mut xtx = vec![vec![0.0; p]; p];
    let mut xty = vec![0.0; p];
    let mut yty = 0.0;
    let centre = (n as f64 - 1.0) / 2.0;
    let scale = (n as f64).max(1.0);
    for (t, &v) in y.iter().enumerate() {
        fourier_row(t, terms, &mut row);
        row.push((t as f64 - centre) / scale);
        for i in 0..p {
            let xi = row[i];
            xty[i] += xi * v;
            for j in i..p {
                xtx[i][j] += xi * row[j];
            }
        }
        yty += v * v;
    }
    // Mirror the upper triangle.
    for i in 1..p {
        let (upper, lower) = xtx.split_at_mut(i);
        for (j, row) in upper.iter().enumerate() {
            lower[0][j] = row[i];
        }
    }
    (xtx, xty, yty)
}

/// Columns of the full design (see [`gram`]) with the terms `full` used by
/// the sub-model with the terms `sub` (each of whose frequencies is in
/// `full`): intercept, the columns of each term's frequency, the trend.
fn columns(full: &[Term], sub: &[Term]) -> Vec<usize> {
    let mut at = Vec::with_capacity(full.len());
    let mut next = 1;
    for f in full {
        at.push(next);
        next += f.width();
    }
    let mut cols = vec![0];
    for &s in sub {
        let i = full
            .iter()
            .position(|&f| f.same_frequency(s))
            .expect("a sub-model's frequencies are in the full design");
        cols.extend(at[i]..at[i] + s.width());
    }
    cols.push(next);
    cols
}

/// Least-squares coefficients and residual sum of squares of the sub-model
/// with `cols` from the normal equations.
fn solve_sub(xtx: &[Vec<f64>], xty: &[f64], yty: f64, cols: &[usize]) -> Option<(Vec<f64>, f64)> {
    let k = cols.len();
    let a: Vec<Vec<f64>> = cols
        .iter()
        .map(|&i| {
            let mut r: Vec<f64> = cols.iter().map(|&j| xtx[i][j]).collect();
            r.push(xty[i]);
            r
        })
        .collect();
    let b = crate::intervals::solve(a)?;
    let fitted: f64 = (0..k).map(|i| b[i] * xty[cols[i]]).sum();
    Some((b, (yty - fitted).max(0.0)))
}

/// K_j per season by the AICc of the regression (with trend), searching
/// each season's K in turn (shortest first, 0 to its most) with the others
/// at their best so far; starts from K_j = min(2, max) everywhere. A
/// sub-model has the terms (see [`terms`]) its fit would have.
fn choose_harmonics(y: &[f64], periods: &[usize]) -> Vec<usize> {
    let full: Vec<usize> = periods.iter().map(|&m| max_harmonics(m)).collect();
    if periods.is_empty() {
        return Vec::new();
    }
    let full_terms = terms(periods, &full);
    let (xtx, xty, yty) = gram(y, &full_terms);
    let n = y.len() as f64;
    // Below this the residual sum of squares (from the normal equations) is
    // rounding: an exact fit (a pure harmonic) scores as this, not as an
    // unusable 0, and among exact fits the fewest terms win.
    let exact = 1e-14 * yty;
    let aicc = |h: &[usize]| {
        let cols = columns(&full_terms, &terms(periods, h));
        let p = cols.len() as f64 + 1.0;
        match solve_sub(&xtx, &xty, yty, &cols).map(|(_, rss)| rss.max(exact)) {
            Some(rss) if rss > 0.0 && n - p - 1.0 > 0.0 => {
                n * (rss / n).ln() + 2.0 * p + 2.0 * p * (p + 1.0) / (n - p - 1.0)
            }
            _ => f64::INFINITY,
        }
    };
    let mut best: Vec<usize> = full.iter().map(|&k| k.min(2)).collect();
    let mut best_ic = aicc(&best);
    for j in 0..periods.len() {
        for k in 0..=full[j] {
            let mut cand = best.clone();
            cand[j] = k;
            let ic = aicc(&cand);
            if ic < best_ic {
                best_ic = ic;
                best = cand;
            }
        }
    }
    best
}

/// The regression of `y` with `harmonics` (and a trend): the coefficients of
/// the intercept and the Fourier terms, and `y` minus those (trend left in).
fn regress(y: &[f64], periods: &[usize], harmonics: &[usize]) -> Option<(Vec<f64>, Vec<f64>)> {
    let terms = terms(periods, harmonics);
    let (xtx, xty, yty) = gram(y, &terms);
    let cols: Vec<usize> = (0..xty.len()).collect();
    let (b, _) = solve_sub(&xtx, &xty, yty, &cols)?;
    let coef = b[..b.len() - 1].to_vec();
    let mut row = Vec::with_capacity(coef.len());
    let mut resid: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(t, v)| {
            fourier_row(t, &terms, &mut row);
            // The intercept stays in the fit: the ARIMA sees the errors
            // around it plus the trend.
            v - row.iter().zip(&coef).map(|(x, c)| x * c).sum::<f64>()
        })
        .collect();
    // An exact fit (a purely periodic series) leaves rounding, not errors:
    // the ARIMA gets zeros rather than a model of that noise.
    let size = y.iter().fold(0.0, |m: f64, v| m.max(v.abs()));
    if resid.iter().all(|r| r.abs() <= ROUNDING * size) {
        resid.fill(0.0);
    }
    Some((coef, resid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_seasons(n: usize, noise: f64) -> Vec<f64> {
        let mut s = 7u64;
        (0..n)
            .map(|t| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                let e = ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * noise;
                let tf = t as f64;
                20.0 + 0.02 * tf
                    + 3.0 * (2.0 * PI * tf / 7.0).sin()
                    + 5.0 * (2.0 * PI * tf / 365.0).cos()
                    + 1.5 * (4.0 * PI * tf / 365.0).sin()
                    + e
            })
            .collect()
    }

    #[test]
    fn reproduces_a_pure_two_season_signal() {
        let all = two_seasons(3 * 365 + 28, 0.0);
        let (train, test) = all.split_at(3 * 365);
        let fit = Dhr::fit(train, &[365, 7]).unwrap();
        assert_eq!(fit.periods, vec![7, 365]);
        let f = fit.forecast(test.len());
        for (a, b) in f.iter().zip(test) {
            assert!((a - b).abs() < 0.05, "{a} vs {b}: {}", fit.describe());
        }
    }

    #[test]
    fn picks_few_harmonics_for_a_smooth_season_and_more_for_a_sharp_one() {
        let smooth = two_seasons(3 * 365, 0.5);
        let fit = Dhr::fit(&smooth, &[7, 365]).unwrap();
        // The weekly sine needs one harmonic; the yearly shape two.
        assert_eq!(fit.harmonics[0], 1, "{}", fit.describe());
        assert!((2..=4).contains(&fit.harmonics[1]), "{}", fit.describe());
        // A square wave of period 24 needs many odd harmonics.
        let square: Vec<f64> = (0..24 * 40)
            .map(|t| if t % 24 < 12 { 1.0 } else { -1.0 } + 0.01 * ((t * 7919) % 13) as f64)
            .collect();
        let fit = Dhr::fit(&square, &[24]).unwrap();
        assert!(fit.harmonics[0] >= 5, "{}", fit.describe());
    }

    #[test]
    fn hand_checked_regression_coefficients() {
        // y = 2 + 3 cos(2πt/4): intercept 2, cos 3, sin 0 (K = 1 of m = 4
        // when only one harmonic is allowed: 4/2 = 2, K chosen by AICc but
        // the fit of K = 1 is exact).
        let y: Vec<f64> = (0..40)
            .map(|t| 2.0 + 3.0 * (2.0 * PI * t as f64 / 4.0).cos())
            .collect();
        let (coef, resid) = regress(&y, &[4], &[1]).unwrap();
        assert!((coef[0] - 2.0).abs() < 1e-9, "{coef:?}");
        assert!((coef[1] - 3.0).abs() < 1e-9, "{coef:?}");
        assert!(coef[2].abs() < 1e-9, "{coef:?}");
        assert!(resid.iter().all(|r| r.abs() < 1e-9));
    }

    #[test]
    fn refilter_keeps_the_model_and_follows_the_data() {
        let y = two_seasons(3 * 365, 0.5);
        let fit = Dhr::fit(&y, &[7, 365]).unwrap();
        let same = fit.refilter(&y);
        assert_eq!(same.harmonics, fit.harmonics);
        let (a, b) = (fit.forecast(30), same.forecast(30));
        for (x, z) in a.iter().zip(&b) {
            assert!((x - z).abs() < 1e-6);
        }
        // On a prefix: forecasts continue that prefix.
        let short = fit.refilter(&y[..900]);
        let f = short.forecast(10);
        for (i, v) in f.iter().enumerate() {
            assert!((v - y[900 + i]).abs() < 1.5, "{v} vs {}", y[900 + i]);
        }
    }

    #[test]
    fn short_even_seasons_stay_regular() {
        // m = 2 and m = 4: the Nyquist harmonic m/2 is the one regressor
        // cos(πt); the harmonic 2 of 4 is the harmonic 1 of 2.
        assert_eq!(max_harmonics(2), 1);
        assert_eq!(max_harmonics(4), 2);
        assert_eq!(max_harmonics(7), 3);
        assert_eq!(max_harmonics(24), MAX_HARMONICS);
        assert_eq!(
            terms(&[2, 4], &[1, 2]),
            vec![Term { m: 2, k: 1 }, Term { m: 4, k: 1 }]
        );
        let mut row = Vec::new();
        fourier_row(3, &terms(&[4], &[2]), &mut row);
        assert_eq!(row.len(), 4);
        for (a, b) in row.iter().zip([1.0, 0.0, -1.0, -1.0]) {
            assert!((a - b).abs() < 1e-12, "{row:?}");
        }
        let y: Vec<f64> = (0..60)
            .map(|t| 10.0 + [1.0, -1.0][t % 2] + 0.1 * t as f64 + 0.01 * ((t * 7) % 5) as f64)
            .collect();
        let fit = Dhr::fit(&y, &[2, 4]).unwrap();
        assert_eq!(fit.harmonics[0], 1, "{}", fit.describe());
        let f = fit.forecast(4);
        assert!(f.iter().all(|v| v.is_finite()), "{f:?}");
        assert!(f[0] - f[1] > 1.5 && f[2] - f[1] > 1.5, "{f:?}");
    }

    #[test]
    fn uses_the_nyquist_harmonic_of_an_even_season() {
        // Period 4, shape 100, 120, 90, 150 (not a single sinusoid: it needs
        // the harmonic 2 = cos(πt)).
        let y = [
            101.0, 119.0, 90.0, 148.0, 100.0, 121.0, 92.0, 149.0, 99.0, 120.0, 87.0, 152.0, 101.0,
            120.0, 91.0, 150.0, 100.0, 121.0, 91.0, 149.0, 99.0, 121.0, 90.0, 149.0,
        ];
        let fit = Dhr::fit(&y, &[4]).unwrap();
        assert_eq!(fit.harmonics, vec![2], "{}", fit.describe());
        assert_eq!(fit.coef.len(), 4);
        let f = fit.forecast(8);
        for (i, v) in f.iter().enumerate() {
            let want = [100.0, 120.0, 90.0, 150.0][i % 4];
            assert!((v - want).abs() < 2.0, "{f:?}: {}", fit.describe());
        }
        // Season 2: the alternation is the harmonic 1 = m/2 alone.
        let y: Vec<f64> = (0..20).map(|t| [0.0, 10.0][t % 2]).collect();
        let fit = Dhr::fit(&y, &[2]).unwrap();
        assert_eq!(fit.harmonics, vec![1], "{}", fit.describe());
        let f = fit.forecast(4);
        for (i, v) in f.iter().enumerate() {
            assert!((v - [0.0, 10.0][i % 2]).abs() < 0.1, "{f:?}");
        }
    }

    #[test]
    fn an_exactly_periodic_series_is_fitted_and_forecast_exactly() {
        // A spike every 7 steps needs every harmonic of 7; the fit is exact
        // (its residual sum of squares is rounding, not a rejected 0).
        let spike = |t: usize| if t.is_multiple_of(7) { 5.0 } else { 0.0 };
        let y: Vec<f64> = (0..50).map(spike).collect();
        let fit = Dhr::fit(&y, &[7]).unwrap();
        assert_eq!(fit.harmonics, vec![3], "{}", fit.describe());
        assert_eq!(fit.errors.sigma2(), 0.0);
        let want: Vec<f64> = (50..64).map(spike).collect();
        let got = fit.forecast(14);
        assert!(
            got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-9),
            "{got:?}"
        );
    }

    #[test]
    fn a_frequency_is_in_the_design_once() {
        // 2/14 = 1/7, 2/28 = 1/14, 4/28 = 1/7, 6/28 = 3/14: left out.
        let t = terms(&[7, 14, 28], &[2, 3, 6]);
        let mk = |m, k| Term { m, k };
        assert_eq!(
            t,
            vec![
                mk(7, 1),
                mk(7, 2),
                mk(14, 1),
                mk(14, 3),
                mk(28, 1),
                mk(28, 3),
                mk(28, 5)
            ]
        );
        // Without the shorter season's harmonic, the longer one keeps it.
        assert_eq!(terms(&[7, 14], &[0, 2]), vec![mk(14, 1), mk(14, 2)]);
        // Sub-models map each frequency to the full design's columns: full
        // [7:3, 14:3] has 7:1..3 (cols 1..=6) and 14:1, 14:3 (cols 7..=10).
        let full = terms(&[7, 14], &[3, 3]);
        assert_eq!(full.len(), 5);
        assert_eq!(
            columns(&full, &terms(&[7, 14], &[1, 1])),
            vec![0, 1, 2, 7, 8, 11]
        );
        assert_eq!(
            columns(&full, &terms(&[7, 14], &[0, 2])),
            vec![0, 7, 8, 1, 2, 11]
        );
    }

    #[test]
    fn nested_seasons_fit_without_repeated_regressors() {
        let y: Vec<f64> = (0..130)
            .map(|i| {
                100.0 + 10.0 * (2.0 * PI * i as f64 / 7.0).sin() + ((i * 37) % 11) as f64 / 10.0
            })
            .collect();
        let (train, test) = y.split_at(120);
        let fit = Dhr::fit(train, &[7, 14, 28]).unwrap();
        assert_eq!(fit.periods, vec![7, 14, 28]);
        // The period-7 sine is in (as 7:1 or as 14:2), once.
        let t = terms(&fit.periods, &fit.harmonics);
        let weekly = Term { m: 7, k: 1 };
        assert_eq!(t.iter().filter(|x| x.same_frequency(weekly)).count(), 1);
        assert_eq!(
            fit.coef.len(),
            1 + t.iter().map(|x| x.width()).sum::<usize>()
        );
        let f = fit.forecast(test.len());
        for (a, b) in f.iter().zip(test) {
            assert!((a - b).abs() < 1.5, "{a} vs {b}: {}", fit.describe());
        }
        let again = fit.refilter(train);
        assert_eq!(again.coef.len(), fit.coef.len());
        for (a, b) in again.forecast(10).iter().zip(&f) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn coefficient_layout_without_repeats_is_unchanged() {
        // Intercept, then per season and harmonic: cos, sin.
        let mut fit = Dhr::fit(&two_seasons(800, 0.5), &[7, 365]).unwrap();
        fit.harmonics = vec![2, 1];
        fit.coef = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        for t in [0, 5, 123, 1000] {
            let (a, b) = (
                2.0 * PI * (t % 7) as f64 / 7.0,
                2.0 * PI * (t % 365) as f64 / 365.0,
            );
            let want = 1.0
                + 2.0 * a.cos()
                + 3.0 * a.sin()
                + 4.0 * (2.0 * a).cos()
                + 5.0 * (2.0 * a).sin()
                + 6.0 * b.cos()
                + 7.0 * b.sin();
            let got = fit.seasonal_at(t, &terms(&fit.periods, &fit.harmonics), &mut Vec::new());
            assert!((got - want).abs() < 1e-9);
        }
    }

    #[test]
    fn serialization_round_trip() {
        let fit = Dhr::fit(&two_seasons(800, 0.5), &[7, 365]).unwrap();
        let json = serde_json::to_string(&fit).unwrap();
        let back: Dhr = serde_json::from_str(&json).unwrap();
        assert_eq!(back, fit);
        assert_eq!(back.forecast(20), fit.forecast(20));
    }

    #[test]
    fn without_seasons_it_is_an_arima_with_a_level() {
        let y: Vec<f64> = (0..100).map(|t| 5.0 + (t % 3) as f64 * 0.1).collect();
        let fit = Dhr::fit(&y, &[]).unwrap();
        assert!(fit.periods.is_empty() && fit.coef.len() == 1);
        assert!(fit.forecast(5).iter().all(|v| (v - 5.1).abs() < 0.2));
        assert!(Dhr::fit(&[1.0, 2.0], &[7]).is_err());
    }
}
