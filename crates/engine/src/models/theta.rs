//! The Theta family: the standard theta method (Assimakopoulos & Nikolopoulos
//! 2000, SES with drift per Hyndman & Billah 2003) and the optimised and
//! dynamic optimised theta models of Fiorucci, Pellegrini, Louzada, Petropoulos
//! & Koehler (2016), in their state-space form. Seasonal series (90%
//! autocorrelation test) are modelled after classical decomposition and
//! reseasonalised.
//!
//! For a fixed smoothing parameter α the one-step errors are affine in the
//! initial level ℓ₀ and in c = 1 − 1/θ (the level, A and B recursions do not
//! depend on either in sample), so the sum of squared errors is a quadratic in
//! (ℓ₀, c): it is solved exactly, and only α is searched numerically (a grid
//! and a golden-section refinement). That makes the fit cheap and free of
//! local optima in ℓ₀ and θ.
//!
//! [`ThetaVariant::Auto`] picks one of the four models (STM, OTM, DSTM, DOTM)
//! by their forecast error on the last max(m, 4) adjusted observations.

use crate::seasonal::{self, Seasonality};
use serde::{Deserialize, Serialize};

/// Which member of the Theta family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThetaVariant {
    /// Standard theta (theta = 2): the STM of Fiorucci et al.
    Standard,
    /// Optimised theta (OTM): theta ≥ 1 chosen by least squares.
    Optimized,
    /// Dynamic optimised theta (DOTM): A and B updated as data arrive.
    Dynamic,
    /// The one of STM, OTM, DSTM and DOTM with the smallest error on a
    /// holdout of the series' own tail (DOTM when the series is too short).
    /// statsforecast's rule, the smallest in-sample MSE, nearly always picks
    /// OTM and is less accurate on M3.
    Auto,
}

/// One of the four state-space theta models of Fiorucci et al. (2016).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThetaModel {
    /// Standard theta model: theta = 2, static A and B.
    Stm,
    /// Optimised theta model: theta estimated, static A and B.
    Otm,
    /// Dynamic standard theta model: theta = 2, A and B updated recursively.
    Dstm,
    /// Dynamic optimised theta model.
    Dotm,
}

impl ThetaModel {
    const ALL: [ThetaModel; 4] = [
        ThetaModel::Stm,
        ThetaModel::Otm,
        ThetaModel::Dstm,
        ThetaModel::Dotm,
    ];

    fn dynamic(self) -> bool {
        matches!(self, ThetaModel::Dstm | ThetaModel::Dotm)
    }

    fn optimises_theta(self) -> bool {
        matches!(self, ThetaModel::Otm | ThetaModel::Dotm)
    }

    fn name(self) -> &'static str {
        match self {
            ThetaModel::Stm => "STM",
            ThetaModel::Otm => "OTM",
            ThetaModel::Dstm => "DSTM",
            ThetaModel::Dotm => "DOTM",
        }
    }
}

/// Errors before this index are not scored. The first one (at t = 0) has no
/// previous state; scoring all the others was slightly better on M3 than
/// statsforecast's skip of three.
const BURN_IN: usize = 1;
/// Below this many observations nothing is estimated (fixed α = 0.5, θ = 2).
const MIN_FIT_LEN: usize = 6;
const ALPHA_MIN: f64 = 0.1;
const ALPHA_MAX: f64 = 0.99;
/// Upper bound of c = 1 − 1/θ (θ ≤ 1000).
const C_MAX: f64 = 0.999;

/// A fitted theta model: parameters, final states and the seasonal indices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Theta {
    /// The variant that was asked for.
    pub variant: ThetaVariant,
    /// The model that was fitted.
    pub model: ThetaModel,
    pub alpha: f64,
    pub theta: f64,
    /// ℓ₀, the level before the first observation (seasonally adjusted units).
    pub init_level: f64,
    /// Final states after `n` observations.
    pub level: f64,
    pub mean_y: f64,
    pub a: f64,
    pub b: f64,
    /// Number of training observations.
    pub n: u64,
    /// Classical decomposition applied before modelling, when seasonal.
    pub season: Option<Seasonality>,
    /// In-sample mean squared one-step error (adjusted units), used to choose
    /// among the models.
    pub mse: f64,
}

/// States of the recursions after some observations.
#[derive(Debug, Clone, Copy)]
struct States {
    level: f64,
    mean_y: f64,
    a: f64,
    b: f64,
}

/// Least-squares intercept and slope of y on t = 1..n (A_n, B_n of the paper).
fn static_ab(y: &[f64]) -> (f64, f64) {
    let n = y.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let nf = n as f64;
    let mean = y.iter().sum::<f64>() / nf;
    if n == 1 {
        return (mean, 0.0);
    }
    let tbar = (nf + 1.0) / 2.0;
    // Centred sums for accuracy.
    let num: f64 = y
        .iter()
        .enumerate()
        .map(|(i, v)| (i as f64 + 1.0 - tbar) * (v - mean))
        .sum();
    let b = num * 12.0 / (nf * (nf * nf - 1.0));
    (mean - tbar * b, b)
}

/// One state transition with observation `y` at 0-based time `i ≥ 1`.
#[inline]
fn step(s: &mut States, i: usize, alpha: f64, dynamic: bool, y: f64) {
    s.level = alpha * y + (1.0 - alpha) * s.level;
    let fi = i as f64;
    let old_mean = s.mean_y;
    s.mean_y = (fi * old_mean + y) / (fi + 1.0);
    if dynamic {
        s.b = ((fi - 1.0) * s.b + 6.0 * (y - old_mean) / (fi + 1.0)) / (fi + 2.0);
        s.a = s.mean_y - s.b * (fi + 2.0) / 2.0;
    }
}

/// (1−α)^{i+1} from (1−α)^i, flushed to zero long before it turns subnormal:
/// subnormal arithmetic is ~100× slower and the term is negligible by then.
#[inline]
fn decay(pw: f64, alpha: f64) -> f64 {
    let next = pw * (1.0 - alpha);
    if next < 1e-150 {
        0.0
    } else {
        next
    }
}

/// The trend part of the one-step forecast at time `i`: μ_i = ℓ_{i-1} + c·g_i
/// with g_i = A·(1−α)^i + B·(1 − (1−α)^{i+1})/α; `pw` is (1−α)^i.
#[inline]
fn trend_term(s: &States, alpha: f64, pw: f64) -> f64 {
    s.a * pw + s.b * (1.0 - pw * (1.0 - alpha)) / alpha
}

fn initial_states(y0: f64, alpha: f64, l0: f64, dynamic: bool, ab: (f64, f64)) -> States {
    let (a, b) = if dynamic { (y0, 0.0) } else { ab };
    States {
        level: alpha * y0 + (1.0 - alpha) * l0,
        mean_y: y0,
        a,
        b,
    }
}

/// Runs the recursions over `y` (non-empty) and returns the final states and
/// the sum of squared one-step errors after the burn-in.
fn filter(y: &[f64], alpha: f64, c: f64, l0: f64, dynamic: bool, ab: (f64, f64)) -> (States, f64) {
    let mut s = initial_states(y[0], alpha, l0, dynamic, ab);
    let mut pw = 1.0;
    let mut sse = 0.0;
    for (i, &v) in y.iter().enumerate().skip(1) {
        pw = decay(pw, alpha);
        let f = s.level + c * trend_term(&s, alpha, pw);
        if i >= BURN_IN {
            sse += (v - f) * (v - f);
        }
        step(&mut s, i, alpha, dynamic, v);
    }
    (s, sse)
}

/// Sums of the quadratic SSE(c, δ) = Σ (r_i − c·g_i − δ·w_i)² where δ is the
/// offset of ℓ₀ from the `l0` used for the pass.
#[derive(Default, Clone, Copy)]
struct Quadratic {
    rr: f64,
    rg: f64,
    rw: f64,
    gg: f64,
    gw: f64,
    ww: f64,
}

impl Quadratic {
    fn accumulate(y: &[f64], alpha: f64, l0: f64, dynamic: bool, ab: (f64, f64)) -> Self {
        let mut q = Quadratic::default();
        let mut s = initial_states(y[0], alpha, l0, dynamic, ab);
        let mut pw = 1.0;
        for (i, &v) in y.iter().enumerate().skip(1) {
            pw = decay(pw, alpha);
            if i >= BURN_IN {
                let r = v - s.level;
                let g = trend_term(&s, alpha, pw);
                // ℓ_{i-1} carries ℓ₀ with weight (1−α)^i.
                let w = pw;
                q.rr += r * r;
                q.rg += r * g;
                q.rw += r * w;
                q.gg += g * g;
                q.gw += g * w;
                q.ww += w * w;
            }
            step(&mut s, i, alpha, dynamic, v);
        }
        q
    }

    fn value(&self, c: f64, d: f64) -> f64 {
        let v = self.rr - 2.0 * c * self.rg - 2.0 * d * self.rw
            + c * c * self.gg
            + 2.0 * c * d * self.gw
            + d * d * self.ww;
        v.max(0.0)
    }

    /// Minimises over δ (with a tiny ridge towards 0) and, when `free_c`, over
    /// c ∈ [0, C_MAX]; otherwise c = `c_fixed`. Returns (sse, c, δ).
    fn solve(&self, free_c: bool, c_fixed: f64, ridge: f64) -> (f64, f64, f64) {
        let ww = self.ww + ridge;
        let best_d = |c: f64| (self.rw - c * self.gw) / ww;
        let c = if free_c {
            let det = self.gg * ww - self.gw * self.gw;
            let c = if det > 1e-12 * (self.gg * ww).max(f64::MIN_POSITIVE) {
                (self.rg * ww - self.rw * self.gw) / det
            } else if self.gg > 0.0 {
                self.rg / self.gg
            } else {
                c_fixed
            };
            if c.is_finite() {
                c.clamp(0.0, C_MAX)
            } else {
                c_fixed
            }
        } else {
            c_fixed
        };
        let d = best_d(c);
        let d = if d.is_finite() { d } else { 0.0 };
        (self.value(c, d) + ridge * d * d, c, d)
    }
}

/// Parameters found by [`estimate`].
struct Estimate {
    alpha: f64,
    c: f64,
    l0: f64,
    sse: f64,
}

/// Fits α, c and ℓ₀ of `model` to `y` (already scaled to unit magnitude).
fn estimate(y: &[f64], model: ThetaModel, ab: (f64, f64)) -> Estimate {
    let dynamic = model.dynamic();
    let free_c = model.optimises_theta();
    let c_fixed = 0.5;
    let a0 = if dynamic { y[0] } else { ab.0 };
    if y.len() < MIN_FIT_LEN {
        let alpha = 0.5;
        let l0 = y[0] - c_fixed * a0;
        let (_, sse) = filter(y, alpha, c_fixed, l0, dynamic, ab);
        return Estimate {
            alpha,
            c: c_fixed,
            l0,
            sse,
        };
    }
    // ℓ₀ guess: start the level where the first forecast equals y₀.
    let guess = y[0] - c_fixed * a0;
    let ridge = 1e-8 * y.len() as f64;
    let eval = |alpha: f64| {
        let q = Quadratic::accumulate(y, alpha, guess, dynamic, ab);
        let (sse, c, d) = q.solve(free_c, c_fixed, ridge);
        (sse, c, guess + d)
    };
    // Coarse grid, then golden-section search around the best grid point.
    const GRID: usize = 12;
    let grid: Vec<f64> = (0..GRID)
        .map(|k| ALPHA_MIN + (ALPHA_MAX - ALPHA_MIN) * k as f64 / (GRID - 1) as f64)
        .collect();
    let values: Vec<f64> = grid.iter().map(|&a| eval(a).0).collect();
    let best = (0..GRID)
        .min_by(|&i, &j| values[i].total_cmp(&values[j]))
        .unwrap_or(0);
    let (mut lo, mut hi) = (grid[best.saturating_sub(1)], grid[(best + 1).min(GRID - 1)]);
    let invphi = (5f64.sqrt() - 1.0) / 2.0;
    let mut x1 = hi - invphi * (hi - lo);
    let mut x2 = lo + invphi * (hi - lo);
    let mut f1 = eval(x1).0;
    let mut f2 = eval(x2).0;
    for _ in 0..14 {
        if f1 <= f2 {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - invphi * (hi - lo);
            f1 = eval(x1).0;
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + invphi * (hi - lo);
            f2 = eval(x2).0;
        }
    }
    let mut alpha = if f1 <= f2 { x1 } else { x2 };
    if values[best] < f1.min(f2) {
        alpha = grid[best];
    }
    let (sse, c, l0) = eval(alpha);
    Estimate { alpha, c, l0, sse }
}

/// Holdout length for [`ThetaVariant::Auto`]: a season, at least 4 points.
const MIN_HOLDOUT: usize = 4;
/// Observations needed before the holdout for the selection to be attempted.
const MIN_BEFORE_HOLDOUT: usize = 12;

/// Fits each model to all but the last max(m, 4) points of the (adjusted,
/// scaled) series and returns the one whose forecasts of those points have the
/// smallest absolute error; DOTM when the series is too short for that. (On
/// M3 one recent holdout chose better than averaging two or three origins or
/// than a holdout twice as long.)
fn choose_by_holdout(y: &[f64], m: usize) -> ThetaModel {
    let n = y.len();
    let hold = m.max(MIN_HOLDOUT);
    if n < hold + MIN_BEFORE_HOLDOUT {
        return ThetaModel::Dotm;
    }
    let (train, test) = y.split_at(n - hold);
    let ab = static_ab(train);
    let mut best = (ThetaModel::Dotm, f64::INFINITY);
    for model in ThetaModel::ALL {
        let est = estimate(train, model, ab);
        let (s, _) = filter(train, est.alpha, est.c, est.l0, model.dynamic(), ab);
        let f = project(s, train.len(), est.alpha, est.c, model.dynamic(), hold);
        let err: f64 = f.iter().zip(test).map(|(a, b)| (a - b).abs()).sum();
        if err < best.1 {
            best = (model, err);
        }
    }
    best.0
}

/// Forecasts `h` steps from states `s` after `n` observations (no seasonality).
fn project(mut s: States, n: usize, alpha: f64, c: f64, dynamic: bool, h: usize) -> Vec<f64> {
    let mut pw = (1.0 - alpha).powf(n as f64);
    let mut out = Vec::with_capacity(h);
    for j in 0..h {
        let f = s.level + c * trend_term(&s, alpha, pw);
        out.push(f);
        step(&mut s, n + j, alpha, dynamic, f);
        pw = decay(pw, alpha);
    }
    out
}

/// A scale for the series so that the arithmetic happens near unit magnitude.
fn scale_of(y: &[f64]) -> f64 {
    let s = y.iter().map(|v| v.abs()).sum::<f64>() / y.len().max(1) as f64;
    if s.is_finite() && s > 0.0 {
        s
    } else {
        1.0
    }
}

/// The seasonally adjusted series and the decomposition, when `y` is seasonal.
fn deseasonalise(y: &[f64], m: usize) -> (Vec<f64>, Option<Seasonality>) {
    if m >= 2 && seasonal::is_seasonal(y, m) {
        if let Some(s) = Seasonality::classical(y, m) {
            let adjusted = s.adjust(y);
            if adjusted.iter().all(|v| v.is_finite()) {
                return (adjusted, Some(s));
            }
        }
    }
    (y.to_vec(), None)
}

impl Theta {
    /// Fits the variant to `y` with season length `m` (1 = none).
    pub fn fit(y: &[f64], m: usize, variant: ThetaVariant) -> Result<Self, String> {
        if y.is_empty() {
            return Err("empty series".into());
        }
        if y.iter().any(|v| !v.is_finite()) {
            return Err("series contains non-finite values".into());
        }
        let (adjusted, season) = deseasonalise(y, m);
        let models: &[ThetaModel] = match variant {
            ThetaVariant::Standard => &[ThetaModel::Stm],
            ThetaVariant::Optimized => &[ThetaModel::Otm],
            ThetaVariant::Dynamic => &[ThetaModel::Dotm],
            ThetaVariant::Auto => &ThetaModel::ALL,
        };
        let scale = scale_of(&adjusted);
        let scaled: Vec<f64> = adjusted.iter().map(|v| v / scale).collect();
        let ab_scaled = static_ab(&scaled);
        let model = match models {
            [only] => *only,
            _ => choose_by_holdout(&scaled, m),
        };
        let est = estimate(&scaled, model, ab_scaled);
        let best = est.sse.is_finite().then_some((model, est));
        let (model, est) = best.ok_or("no theta model could be fitted")?;
        let init_level = est.l0 * scale;
        let mut fitted = Theta {
            variant,
            model,
            alpha: est.alpha,
            theta: 1.0 / (1.0 - est.c),
            init_level,
            level: 0.0,
            mean_y: 0.0,
            a: 0.0,
            b: 0.0,
            n: 0,
            season,
            mse: 0.0,
        };
        fitted.run(&adjusted);
        if !(fitted.level.is_finite() && fitted.a.is_finite() && fitted.b.is_finite()) {
            return Err("theta recursions diverged".into());
        }
        Ok(fitted)
    }

    /// The best of the four models on a holdout of the series' own tail
    /// (see [`ThetaVariant::Auto`]).
    pub fn fit_auto(y: &[f64], m: usize) -> Result<Self, String> {
        Self::fit(y, m, ThetaVariant::Auto)
    }

    /// Recomputes the states (and the static A, B) over the adjusted series.
    fn run(&mut self, adjusted: &[f64]) {
        self.n = adjusted.len() as u64;
        if adjusted.is_empty() {
            return;
        }
        let dynamic = self.model.dynamic();
        let ab = static_ab(adjusted);
        let c = 1.0 - 1.0 / self.theta;
        let (s, sse) = filter(adjusted, self.alpha, c, self.init_level, dynamic, ab);
        self.level = s.level;
        self.mean_y = s.mean_y;
        self.a = s.a;
        self.b = s.b;
        let scored = adjusted.len().saturating_sub(BURN_IN).max(1);
        self.mse = sse / scored as f64;
    }

    /// Point forecasts 1..=h steps after the end of the training data.
    pub fn forecast(&self, h: usize) -> Vec<f64> {
        let n = self.n as usize;
        let alpha = self.alpha;
        let c = 1.0 - 1.0 / self.theta;
        let dynamic = self.model.dynamic();
        let s = States {
            level: self.level,
            mean_y: self.mean_y,
            a: self.a,
            b: self.b,
        };
        let mut out = project(s, n, alpha, c, dynamic, h);
        if let Some(season) = &self.season {
            season.restore(&mut out, n);
        }
        sanitise(&mut out, self.level);
        out
    }

    /// The chosen model in words, e.g. `DOTM(theta=2.31)`.
    pub fn describe(&self) -> String {
        let seasonal = if self.season.is_some() {
            ", seasonal"
        } else {
            ""
        };
        format!(
            "{}(theta={:.2}, alpha={:.3}{seasonal})",
            self.model.name(),
            self.theta,
            self.alpha
        )
    }

    /// Same model and parameters, states recomputed over `y` (O(n), no
    /// optimisation). The seasonal indices are kept.
    pub fn refilter(&self, y: &[f64]) -> Self {
        let mut out = self.clone();
        let clean: Vec<f64> = y.iter().copied().filter(|v| v.is_finite()).collect();
        if clean.is_empty() {
            return out;
        }
        let adjusted = match &self.season {
            Some(s) => s.adjust(&clean),
            None => clean,
        };
        out.run(&adjusted);
        out
    }
}

/// Replaces non-finite forecasts (overflow on absurd inputs) by the last finite
/// value, or by `fallback`.
fn sanitise(out: &mut [f64], fallback: f64) {
    let mut last = if fallback.is_finite() { fallback } else { 0.0 };
    for v in out.iter_mut() {
        if v.is_finite() {
            last = *v;
        } else {
            *v = last;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
    }

    /// Simple exponential smoothing of `z` started at `l0`; returns the final level.
    fn ses(z: &[f64], alpha: f64, l0: f64) -> f64 {
        z.iter().fold(l0, |l, v| alpha * v + (1.0 - alpha) * l)
    }

    fn noisy_trend(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = crate::test_support::Lcg(seed);
        (0..n)
            .map(|t| {
                let u = rng.centred();
                50.0 + 0.7 * t as f64 + 4.0 * u
            })
            .collect()
    }

    #[test]
    fn standard_theta_on_a_line_extrapolates_half_the_slope() {
        // Theta = 2 averages the regression line (full slope) with SES of the
        // theta-2 line (no slope), so forecasts rise by b/2 per step.
        let b = 3.0;
        let y: Vec<f64> = (0..30).map(|t| 10.0 + b * t as f64).collect();
        let fit = Theta::fit(&y, 1, ThetaVariant::Standard).unwrap();
        assert_eq!(fit.model, ThetaModel::Stm);
        assert!(close(fit.theta, 2.0, 1e-12));
        let f = fit.forecast(10);
        for w in f.windows(2) {
            assert!(close(w[1] - w[0], b / 2.0, 1e-9), "{:?}", f);
        }
    }

    #[test]
    fn standard_theta_equals_the_original_theta_method() {
        // Assimakopoulos & Nikolopoulos: the average of the extrapolated
        // regression line (theta = 0) and SES on the theta = 2 line
        // 2y − (A + B t). Hyndman & Billah show this is SES with drift b/2; the
        // state-space STM must agree once the start-up has decayed.
        let y = noisy_trend(200, 7);
        let fit = Theta::fit(&y, 1, ThetaVariant::Standard).unwrap();
        let (a, b) = static_ab(&y);
        let n = y.len();
        let z: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(i, v)| 2.0 * v - (a + b * (i + 1) as f64))
            .collect();
        let ses_z = ses(&z, fit.alpha, z[0]);
        let f = fit.forecast(6);
        for (k, fk) in f.iter().enumerate() {
            let h = (k + 1) as f64;
            let original = 0.5 * (a + b * (n as f64 + h)) + 0.5 * ses_z;
            assert!(close(*fk, original, 1e-9), "h={h}: {fk} vs {original}");
            // SES with drift (Hyndman & Billah): ℓ̃_n + b/2·(h − 1 + 1/α).
            let drift = ses(&y, fit.alpha, y[0]) + b / 2.0 * (h - 1.0 + 1.0 / fit.alpha);
            assert!(close(*fk, drift, 1e-9), "h={h}: {fk} vs {drift}");
        }
    }

    #[test]
    fn least_squares_solution_matches_brute_force() {
        // The exact (c, ℓ₀) solution for a given α must beat any nearby pair.
        let y = noisy_trend(60, 3);
        let scale = scale_of(&y);
        let ys: Vec<f64> = y.iter().map(|v| v / scale).collect();
        let ab = static_ab(&ys);
        for model in [ThetaModel::Otm, ThetaModel::Dotm] {
            let est = estimate(&ys, model, ab);
            let (_, sse) = filter(&ys, est.alpha, est.c, est.l0, model.dynamic(), ab);
            assert!(close(sse, est.sse, 1e-6), "{sse} vs {}", est.sse);
            for (dc, dl) in [(0.01, 0.0), (-0.01, 0.0), (0.0, 0.01), (0.0, -0.01)] {
                let c = (est.c + dc).clamp(0.0, C_MAX);
                let (_, other) = filter(&ys, est.alpha, c, est.l0 + dl, model.dynamic(), ab);
                assert!(other >= sse * (1.0 - 1e-9), "{model:?} {dc} {dl}");
            }
        }
    }

    #[test]
    fn dynamic_ab_track_the_regression_on_the_prefix() {
        let y = noisy_trend(40, 11);
        let mut s = initial_states(y[0], 0.3, y[0], true, (0.0, 0.0));
        for (i, &v) in y.iter().enumerate().skip(1) {
            step(&mut s, i, 0.3, true, v);
            let (a, b) = static_ab(&y[..=i]);
            assert!(close(s.a, a, 1e-9) && close(s.b, b, 1e-9), "i={i}");
        }
    }

    #[test]
    fn constant_series_forecasts_the_constant() {
        for variant in [
            ThetaVariant::Standard,
            ThetaVariant::Optimized,
            ThetaVariant::Dynamic,
            ThetaVariant::Auto,
        ] {
            for len in [1, 2, 5, 30] {
                let y = vec![42.5; len];
                let fit = Theta::fit(&y, 4, variant).unwrap();
                for v in fit.forecast(12) {
                    assert!(close(v, 42.5, 1e-9), "{variant:?} {len}: {v}");
                }
            }
        }
    }

    #[test]
    fn seasonal_pattern_repeats() {
        let pattern = [0.7, 1.1, 1.4, 0.8];
        let y: Vec<f64> = (0..48).map(|t| 200.0 * pattern[t % 4]).collect();
        let fit = Theta::fit(&y, 4, ThetaVariant::Dynamic).unwrap();
        assert!(fit.season.is_some());
        let f = fit.forecast(8);
        for (k, v) in f.iter().enumerate() {
            let want = 200.0 * pattern[(48 + k) % 4];
            assert!(close(*v, want, 1e-6), "{k}: {v} vs {want}");
        }
    }

    #[test]
    fn refilter_on_training_data_reproduces_the_forecast() {
        let pattern = [0.9, 1.2, 1.0, 0.9];
        let y: Vec<f64> = noisy_trend(64, 5)
            .iter()
            .enumerate()
            .map(|(t, v)| v * pattern[t % 4])
            .collect();
        for variant in [
            ThetaVariant::Standard,
            ThetaVariant::Optimized,
            ThetaVariant::Dynamic,
            ThetaVariant::Auto,
        ] {
            let fit = Theta::fit(&y, 4, variant).unwrap();
            let again = fit.refilter(&y);
            assert_eq!(fit.forecast(8), again.forecast(8), "{variant:?}");
            // On a prefix: same parameters, fewer observations.
            let prefix = fit.refilter(&y[..40]);
            assert_eq!(prefix.n, 40);
            assert_eq!(prefix.alpha, fit.alpha);
            assert!(prefix.forecast(8).iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn optimised_theta_is_at_least_as_good_in_sample() {
        let y = noisy_trend(80, 9);
        let stm = Theta::fit(&y, 1, ThetaVariant::Standard).unwrap();
        let otm = Theta::fit(&y, 1, ThetaVariant::Optimized).unwrap();
        assert!(otm.mse <= stm.mse * (1.0 + 1e-9));
        assert!(otm.theta >= 1.0);
    }

    #[test]
    fn auto_prefers_full_trend_on_a_clean_line() {
        // Standard theta extrapolates half the slope, so on a near-perfect line
        // the holdout must reject STM and DSTM in favour of a large theta.
        let y: Vec<f64> = (0..60)
            .map(|t| 5.0 + 2.0 * t as f64 + 0.01 * ((t * 7919) % 13) as f64)
            .collect();
        let auto = Theta::fit(&y, 1, ThetaVariant::Auto).unwrap();
        assert!(
            matches!(auto.model, ThetaModel::Otm | ThetaModel::Dotm),
            "{}",
            auto.describe()
        );
        assert!(auto.theta > 5.0, "{}", auto.describe());
        let f = auto.forecast(5);
        assert!(close(f[4] - f[3], 2.0, 0.05), "{f:?}");
        // Its parameters are those of a direct fit of the chosen model.
        let direct = match auto.model {
            ThetaModel::Otm => Theta::fit(&y, 1, ThetaVariant::Optimized).unwrap(),
            _ => Theta::fit(&y, 1, ThetaVariant::Dynamic).unwrap(),
        };
        assert_eq!(direct.alpha, auto.alpha);
        assert_eq!(direct.forecast(5), f);
    }

    #[test]
    fn robust_on_awkward_input() {
        let cases: Vec<Vec<f64>> = vec![
            vec![1.0],
            vec![1.0, 2.0],
            vec![0.0; 10],
            vec![-5.0, 3.0, -2.0, 8.0, 0.0, -1.0, 4.0],
            (0..50).map(|t| 1e12 * (1.0 + 0.01 * t as f64)).collect(),
            (0..50).map(|t| 1e-9 * (1.0 + (t % 7) as f64)).collect(),
            (0..3000).map(|t| ((t * 37) % 101) as f64 - 50.0).collect(),
        ];
        for y in &cases {
            for variant in [
                ThetaVariant::Standard,
                ThetaVariant::Optimized,
                ThetaVariant::Dynamic,
                ThetaVariant::Auto,
            ] {
                let fit = Theta::fit(y, 12, variant).unwrap();
                let f = fit.forecast(24);
                assert!(f.iter().all(|v| v.is_finite()), "{variant:?} {f:?}");
                let r = fit.refilter(&y[..1]);
                assert!(r.forecast(3).iter().all(|v| v.is_finite()));
                assert!(fit.refilter(&[]).forecast(3).iter().all(|v| v.is_finite()));
            }
        }
        assert!(Theta::fit(&[], 1, ThetaVariant::Standard).is_err());
        assert!(Theta::fit(&[1.0, f64::NAN], 1, ThetaVariant::Standard).is_err());
    }

    #[test]
    fn serde_round_trip_is_bit_exact() {
        let pattern = [0.9, 1.2, 1.0, 0.9];
        let y: Vec<f64> = noisy_trend(64, 5)
            .iter()
            .enumerate()
            .map(|(t, v)| v * pattern[t % 4])
            .collect();
        let fit = Theta::fit(&y, 4, ThetaVariant::Auto).unwrap();
        let bytes = postcard::to_allocvec(&fit).unwrap();
        let back: Theta = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, fit);
        let (a, b) = (fit.forecast(10), back.forecast(10));
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        let json = serde_json::to_string(&fit).unwrap();
        let back: Theta = serde_json::from_str(&json).unwrap();
        assert_eq!(back.forecast(10), a);
    }
}
