//! Complex exponential smoothing (Svetunkov & Kourentzes; seasonal versions
//! after Svetunkov, Kourentzes & Ord 2022): a level and an "information
//! potential" component smoothed with one complex parameter α = α₀ + iα₁, so
//! that the model moves between level and trend behaviour without choosing.
//!
//! Seasonal forms: `Simple` (the CES recursions run on lag m only), `Partial`
//! (non-seasonal CES plus an additive seasonal component with a real
//! parameter β) and `Full` (non-seasonal CES plus a lag-m CES with a complex
//! β = β₀ + iβ₁), chosen by AICc in [`CesSearch::Native`] (statsforecast's
//! AutoCES). The default, [`CesSearch::Adjusted`], fits non-seasonal CES to the
//! classically adjusted series instead when the 90% seasonality test passes:
//! on M3 that is far more accurate (monthly sMAPE 13.8 against 15.3) and 6×
//! faster. [`CesSearch::Both`] lets all candidates compete by AICc.
//!
//! Initial states are estimated by backcasting, as statsforecast's AutoCES
//! does: a forward pass from rough states, a backward pass over the reversed
//! series, and a final forward pass from the backcast states; the parameters
//! minimise the final pass's sum of squared one-step errors (Nelder–Mead)
//! within the admissible region (stable discount matrix) and with the forecast
//! trajectory's growth capped at 4% per step.
//!
//! Long-range forecasts. CES extrapolates a trend exponentially: with zero
//! errors its states follow the transition [[1, −(1−α₁)], [1, 1−α₀]], whose
//! spectral radius r exceeds 1 when α₁ > 1 (a real root above 1: CES's trend),
//! and also when α₀ + α₁ < 1 or 2α₀ + α₁ > 5; the forecast then grows like rʰ.
//! Even the 4% cap compounds without bound (a straight line 5, 7, …, 83
//! forecast 3,000 at step 100 and 1e157 at step 10,000, and its 95% interval
//! collapsed to zero width). Restricting the admissible region to r ≤ 1 removes
//! CES's trend altogether (r ≤ 1 means α₁ ≤ 1: a level or a decay) and was much
//! less accurate (M3 CES MASE 1.403 → 1.587, `auto` 1.309 → 1.317); damping
//! every step like a damped trend made the realworld benchmark worse. So the
//! fitted trajectory is kept for its doubling time, ⌈ln 2 / ln r⌉ steps (at
//! least 18 at the cap; no forecast of the M3 or realworld.csv benchmarks
//! changed), and its increments are damped by φ = 0.9 per step after that, so
//! every forecast converges to a finite limit (the line: 254) and the intervals
//! keep widening (see `damp_long_range`). Each growing recursion is damped on
//! its own lag: the simple seasonal form and the full form's seasonal CES per
//! cycle. A trajectory that decays (r < 1) is left as fitted; it tends to zero
//! at long range (damping it after its halving time as well moved the
//! benchmarks slightly both ways and was not adopted: BENCHMARKS.md, "CES
//! trajectory bound").

use crate::optim::NelderMead;
use crate::seasonal::{self, Seasonality};
use serde::{Deserialize, Serialize};

/// Which seasonal form of CES.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CesSeason {
    /// Non-seasonal CES.
    None,
    /// CES on the seasonal lag only.
    Simple,
    /// Non-seasonal CES plus an additive seasonal component.
    Partial,
    /// Non-seasonal CES plus a seasonal CES.
    Full,
}

impl CesSeason {
    fn letter(self) -> &'static str {
        match self {
            CesSeason::None => "n",
            CesSeason::Simple => "s",
            CesSeason::Partial => "p",
            CesSeason::Full => "f",
        }
    }

    /// Estimated parameters, including the error variance (as statsforecast counts).
    fn n_params(self) -> usize {
        match self {
            CesSeason::None | CesSeason::Simple => 3,
            CesSeason::Partial => 4,
            CesSeason::Full => 5,
        }
    }
}

/// Which candidates [`Ces::fit_with`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CesSearch {
    /// Non-seasonal CES, on the classically (multiplicatively when positive)
    /// adjusted series when the 90% seasonality test passes. The default.
    Adjusted,
    /// Non-seasonal, simple, partial and full seasonal CES on the raw series,
    /// chosen by AICc (statsforecast's AutoCES).
    Native,
    /// All of the above, chosen by AICc on the original scale.
    Both,
}

/// One row of states: level, potential, seasonal level, seasonal potential.
type Row = [f64; 4];

/// Smoothing parameters: α₀, α₁ and (seasonal) β₀, β₁.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CesParams {
    pub alpha0: f64,
    pub alpha1: f64,
    pub beta0: f64,
    pub beta1: f64,
}

/// A fitted CES model: parameters and the last `lag` rows of states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ces {
    pub season: CesSeason,
    /// Season length used by the seasonal forms (1 for `None`).
    pub lag: u64,
    pub params: CesParams,
    /// The last `lag` state rows, oldest first.
    pub states: Vec<Row>,
    /// Number of training observations.
    pub n: u64,
    /// Classical decomposition applied before a non-seasonal fit, if any.
    pub adjustment: Option<Seasonality>,
    /// AICc of the fit (`f64::MAX` when the series is too short for it).
    pub aicc: f64,
}

const LOWER: [f64; 4] = [0.01, 0.01, 0.01, 0.01];
const UPPER: [f64; 4] = [1.8, 1.9, 1.5, 1.5];

/// The recursions of one model, over a ring buffer of the last `lag` rows.
struct Filter {
    season: CesSeason,
    p: CesParams,
    lag: usize,
    ring: Vec<Row>,
    /// Index in `ring` of the next row to write (the row `lag` steps back)
    /// and of the last one written: kept by increments, not `%`, since an
    /// integer division per step was a large part of the filter's cost.
    slot: usize,
    prev: usize,
}

impl Filter {
    fn new(season: CesSeason, p: CesParams, init: &[Row]) -> Self {
        Self {
            season,
            p,
            lag: init.len(),
            ring: init.to_vec(),
            slot: 0,
            prev: init.len().saturating_sub(1),
        }
    }

    /// One-step forecast from the current rows.
    #[inline]
    fn predict(&self) -> f64 {
        let prev = &self.ring[self.prev];
        let back = &self.ring[self.slot];
        match self.season {
            CesSeason::None => prev[0],
            CesSeason::Simple => back[0],
            CesSeason::Partial | CesSeason::Full => prev[0] + back[2],
        }
    }

    /// The one-step forecast as its CES part and its seasonal part.
    #[inline]
    fn parts(&self) -> (f64, f64) {
        let prev = &self.ring[self.prev];
        let back = &self.ring[self.slot];
        match self.season {
            CesSeason::None => (prev[0], 0.0),
            CesSeason::Simple => (back[0], 0.0),
            CesSeason::Partial | CesSeason::Full => (prev[0], back[2]),
        }
    }

    /// Consumes observation `y`; returns the one-step error.
    #[inline]
    fn update(&mut self, y: f64) -> f64 {
        let e = y - self.predict();
        let CesParams {
            alpha0: a0,
            alpha1: a1,
            beta0: b0,
            beta1: b1,
        } = self.p;
        let prev = self.ring[self.prev];
        let back = self.ring[self.slot];
        let base = if self.season == CesSeason::Simple {
            back
        } else {
            prev
        };
        let mut row = [0.0; 4];
        row[0] = base[0] - (1.0 - a1) * base[1] + (a0 - a1) * e;
        row[1] = base[0] + (1.0 - a0) * base[1] + (a0 + a1) * e;
        match self.season {
            CesSeason::Partial => row[2] = back[2] + b0 * e,
            CesSeason::Full => {
                row[2] = back[2] - (1.0 - b1) * back[3] + (b0 - b1) * e;
                row[3] = back[2] + (1.0 - b0) * back[3] + (b0 + b1) * e;
            }
            _ => {}
        }
        self.ring[self.slot] = row;
        self.prev = self.slot;
        self.slot += 1;
        if self.slot == self.lag {
            self.slot = 0;
        }
        e
    }

    /// [`Filter::update`] on every value of `ys` in turn, passing each
    /// one-step error to `each`. The same arithmetic, specialised to the
    /// seasonal form once for the whole run and with the newest row kept in
    /// registers rather than read back from the ring at every step (the
    /// filter is most of the cost of fitting CES).
    fn feed(&mut self, ys: impl Iterator<Item = f64>, each: impl FnMut(f64)) {
        match self.season {
            CesSeason::None => self.feed_as::<0>(ys, each),
            CesSeason::Simple => self.feed_as::<1>(ys, each),
            CesSeason::Partial => self.feed_as::<2>(ys, each),
            CesSeason::Full => self.feed_as::<3>(ys, each),
        }
    }

    /// [`Filter::feed`] for one seasonal form: 0 none, 1 simple, 2 partial,
    /// 3 full.
    #[inline(always)]
    fn feed_as<const S: u8>(&mut self, ys: impl Iterator<Item = f64>, mut each: impl FnMut(f64)) {
        let CesParams {
            alpha0: a0,
            alpha1: a1,
            beta0: b0,
            beta1: b1,
        } = self.p;
        let lag = self.lag;
        let mut slot = self.slot;
        let mut written = self.prev;
        let mut prev = self.ring[self.prev];
        for y in ys {
            let back = self.ring[slot];
            let predicted = match S {
                0 => prev[0],
                1 => back[0],
                _ => prev[0] + back[2],
            };
            let e = y - predicted;
            let base = if S == 1 { back } else { prev };
            let mut row = [0.0; 4];
            row[0] = base[0] - (1.0 - a1) * base[1] + (a0 - a1) * e;
            row[1] = base[0] + (1.0 - a0) * base[1] + (a0 + a1) * e;
            match S {
                2 => row[2] = back[2] + b0 * e,
                3 => {
                    row[2] = back[2] - (1.0 - b1) * back[3] + (b0 - b1) * e;
                    row[3] = back[2] + (1.0 - b0) * back[3] + (b0 + b1) * e;
                }
                _ => {}
            }
            self.ring[slot] = row;
            prev = row;
            written = slot;
            slot += 1;
            if slot == lag {
                slot = 0;
            }
            each(e);
        }
        self.slot = slot;
        self.prev = written;
    }

    /// The last `lag` rows, oldest first.
    fn rows(&self) -> Vec<Row> {
        (0..self.lag)
            .map(|k| self.ring[(self.slot + k) % self.lag])
            .collect()
    }

    /// Runs `lag` forecast steps (zero error) and returns those rows, oldest first.
    fn extended_rows(&self) -> Vec<Row> {
        let mut f = Filter {
            season: self.season,
            p: self.p,
            lag: self.lag,
            ring: self.ring.clone(),
            slot: self.slot,
            prev: self.prev,
        };
        for _ in 0..self.lag {
            let v = f.predict();
            f.update(v);
        }
        f.rows()
    }
}

/// Damping, per step (per cycle for a lag-m trajectory), of the increments of
/// a growing trajectory beyond its doubling time: a strong damped trend, as in
/// ETS's range of φ (0.8–0.98). With the admissible growth r ≤ 1.04 the
/// damped increments shrink by r·φ ≤ 0.936 per step, so the forecast
/// converges to a finite limit.
const LONG_RANGE_DAMPING: f64 = 0.9;

/// Damps the long range of one component's no-error trajectory `z` (forecast
/// steps 1, 2, … of a recursion on lag `lag` whose transition has spectral
/// radius `radius`). A trajectory with `radius` > 1 grows exponentially; it is
/// followed as fitted for its doubling time, ⌈ln 2 / ln r⌉ steps (cycles of
/// `lag` steps for a seasonal recursion; 18 at r = 1.04), and from there each
/// increment z[h] − z[h − lag] is multiplied by φ, φ², … (φ =
/// [`LONG_RANGE_DAMPING`]). A trajectory that does not grow is left alone.
fn damp_long_range(z: &mut [f64], lag: usize, radius: f64) {
    if radius.is_nan() || radius <= 1.0 || z.len() <= lag {
        return;
    }
    let cycles = (std::f64::consts::LN_2 / radius.ln()).ceil().max(1.0);
    if cycles >= (z.len() / lag) as f64 {
        // Also when the radius is so close to 1 that ln r rounds to 0.
        return;
    }
    let cycles = cycles as usize;
    let raw = z.to_vec();
    let mut w = 1.0;
    for h in lag..z.len() {
        if h % lag == 0 && h / lag >= cycles {
            w *= LONG_RANGE_DAMPING;
        }
        let step = w * (raw[h] - raw[h - lag]);
        z[h] = z[h - lag] + if step.is_finite() { step } else { 0.0 };
    }
}

/// Backcasting: forward, backward, forward. Returns the final pass's SSE and
/// its last rows.
fn backfit(
    y: &[f64],
    season: CesSeason,
    p: CesParams,
    init: &[Row],
    weights: Option<&[f64]>,
) -> (f64, Vec<Row>) {
    let mut f = Filter::new(season, p, init);
    f.feed(y.iter().copied(), |_| {});
    let mut start = f.extended_rows();
    start.reverse();
    let mut b = Filter::new(season, p, &start);
    b.feed(y.iter().rev().copied(), |_| {});
    let mut start = b.extended_rows();
    start.reverse();
    let mut f = Filter::new(season, p, &start);
    let mut sse = 0.0;
    match weights {
        Some(w) => {
            // As many steps as weights (and values); the t-th error gets w[t].
            let mut weight = w.iter();
            f.feed(y.iter().zip(w).map(|(&v, _)| v), |e| {
                let e = e * weight.next().copied().unwrap_or(0.0);
                sse += e * e;
            });
        }
        None => f.feed(y.iter().copied(), |e| sse += e * e),
    }
    (sse, f.rows())
}

/// Additive classical seasonal indices (centred moving average), index k
/// applying at times t ≡ k (mod m); zeros when the series is too short.
fn additive_indices(y: &[f64], m: usize) -> Vec<f64> {
    let n = y.len();
    let mut out = vec![0.0; m];
    if m < 2 || n < 2 * m {
        return out;
    }
    let half = m / 2;
    let mut sums = vec![0.0; m];
    let mut counts = vec![0usize; m];
    for t in half..n - half {
        let cma = if m % 2 == 1 {
            y[t - half..=t + half].iter().sum::<f64>() / m as f64
        } else {
            (0.5 * y[t - half] + y[t + 1 - half..t + half].iter().sum::<f64>() + 0.5 * y[t + half])
                / m as f64
        };
        sums[t % m] += y[t] - cma;
        counts[t % m] += 1;
    }
    for k in 0..m {
        if counts[k] > 0 {
            out[k] = sums[k] / counts[k] as f64;
        }
    }
    let mean = out.iter().sum::<f64>() / m as f64;
    out.iter_mut().for_each(|v| *v -= mean);
    out
}

/// Rough starting states (then refined by backcasting). Works for any n ≥ 1.
fn initial_rows(y: &[f64], season: CesSeason, lag: usize) -> Vec<Row> {
    let n = y.len();
    let mean_of = |k: usize| y[..k.clamp(1, n)].iter().sum::<f64>() / k.clamp(1, n) as f64;
    match season {
        CesSeason::None => {
            let l = mean_of(10);
            vec![[l, l / 1.1, 0.0, 0.0]]
        }
        CesSeason::Simple => (0..lag)
            .map(|k| {
                let v = y[k.min(n - 1)];
                [v, v / 1.1, 0.0, 0.0]
            })
            .collect(),
        CesSeason::Partial | CesSeason::Full => {
            let l = mean_of(lag);
            let s = additive_indices(y, lag);
            s.iter()
                .map(|&sk| {
                    let s1 = if season == CesSeason::Full {
                        sk / 1.1
                    } else {
                        0.0
                    };
                    [l, l / 1.1, sk, s1]
                })
                .collect()
        }
    }
}

/// Spectral radius of the no-error transition [[1, −(1−a₁)], [1, 1−a₀]]: the
/// per-step growth of the forecast trajectory.
fn trajectory_radius(a0: f64, a1: f64) -> f64 {
    let tr = 2.0 - a0;
    let det = 2.0 - a0 - a1;
    let disc = tr * tr - 4.0 * det;
    if disc >= 0.0 {
        let r = disc.sqrt();
        ((tr + r) / 2.0).abs().max(((tr - r) / 2.0).abs())
    } else {
        det.max(0.0).sqrt()
    }
}

/// Spectral radius of the discount matrix D = F − g w' of non-seasonal CES.
fn discount_radius(a0: f64, a1: f64) -> f64 {
    let d = [[1.0 - (a0 - a1), -(1.0 - a1)], [1.0 - (a0 + a1), 1.0 - a0]];
    let tr = d[0][0] + d[1][1];
    let det = d[0][0] * d[1][1] - d[0][1] * d[1][0];
    let disc = tr * tr - 4.0 * det;
    if disc >= 0.0 {
        let r = disc.sqrt();
        ((tr + r) / 2.0).abs().max(((tr - r) / 2.0).abs())
    } else {
        det.max(0.0).sqrt()
    }
}

/// Largest growth per step of the forecast trajectory we accept. CES can
/// extrapolate exponentially (a real eigenvalue above 1); on short noisy series
/// that produces wild forecasts, so growth is capped at 4% per step. The cap
/// alone still compounds without bound: the long range is damped in
/// [`Ces::forecast`] (see `damp_long_range`).
const MAX_TRAJECTORY_RADIUS: f64 = 1.04;

/// Stability of the discount matrix (the admissibility condition of the CES
/// papers) and a bounded forecast trajectory.
fn admissible(season: CesSeason, p: CesParams) -> bool {
    let seasonal_ok =
        season != CesSeason::Full || trajectory_radius(p.beta0, p.beta1) <= MAX_TRAJECTORY_RADIUS;
    discount_radius(p.alpha0, p.alpha1) <= 1.0
        && trajectory_radius(p.alpha0, p.alpha1) <= MAX_TRAJECTORY_RADIUS
        && seasonal_ok
}

fn params_from(season: CesSeason, x: &[f64]) -> CesParams {
    let get = |i: usize, d: f64| x.get(i).copied().unwrap_or(d);
    match season {
        CesSeason::Partial => CesParams {
            alpha0: get(0, 1.3),
            alpha1: get(1, 1.0),
            beta0: get(2, 0.1),
            beta1: 0.0,
        },
        CesSeason::Full => CesParams {
            alpha0: get(0, 1.3),
            alpha1: get(1, 1.0),
            beta0: get(2, 1.3),
            beta1: get(3, 1.0),
        },
        _ => CesParams {
            alpha0: get(0, 1.3),
            alpha1: get(1, 1.0),
            beta0: 0.0,
            beta1: 0.0,
        },
    }
}

/// Fits one seasonal form to `y` (scaled); returns parameters, SSE and AICc.
/// A fitted candidate of [`Ces::fit`].
struct Candidate {
    season: CesSeason,
    params: CesParams,
    aicc: f64,
    adjusted: bool,
}

/// Fits one form to `y` (scaled). `weights` rescale the one-step errors (the
/// multiplicative seasonal indices of an adjusted series) and `extra_k` counts
/// parameters estimated before (the indices). Returns parameters and AICc.
fn fit_one(
    y: &[f64],
    season: CesSeason,
    lag: usize,
    weights: Option<&[f64]>,
    extra_k: usize,
) -> Option<(CesParams, f64)> {
    let init = initial_rows(y, season, lag);
    let x0: Vec<f64> = match season {
        CesSeason::Partial => vec![1.3, 1.0, 0.1],
        CesSeason::Full => vec![1.3, 1.0, 1.3, 1.0],
        _ => vec![1.3, 1.0],
    };
    let k = x0.len();
    let objective = |x: &[f64]| {
        let p = params_from(season, x);
        if !admissible(season, p) {
            return f64::INFINITY;
        }
        let sse = backfit(y, season, p, &init, weights).0;
        if sse.is_finite() {
            sse
        } else {
            f64::INFINITY
        }
    };
    let nm = NelderMead {
        max_evals: 60 * k,
        tol: 1e-6,
        init_step: 0.05,
    };
    let best = nm.minimize(objective, &x0, &LOWER[..k], &UPPER[..k]);
    if !best.value.is_finite() {
        return None;
    }
    let n = y.len() as f64;
    let np = (season.n_params() + extra_k) as f64;
    let lik = n * (best.value.max(1e-300) / n).ln();
    let aicc = if n - np - 1.0 > 0.0 {
        lik + 2.0 * np + 2.0 * np * (np + 1.0) / (n - np - 1.0)
    } else {
        f64::MAX
    };
    Some((params_from(season, &best.x), aicc))
}

impl Ces {
    /// Fits the family's default choice to `y` with season length `m` (1 = none):
    /// [`CesSearch::Adjusted`], the most accurate on M3.
    pub fn fit(y: &[f64], m: usize) -> Result<Self, String> {
        Self::fit_with(y, m, CesSearch::Adjusted)
    }

    /// Fits with an explicit choice of the candidate models.
    pub fn fit_with(y: &[f64], m: usize, search: CesSearch) -> Result<Self, String> {
        if y.is_empty() {
            return Err("empty series".into());
        }
        if y.iter().any(|v| !v.is_finite()) {
            return Err("series contains non-finite values".into());
        }
        let n = y.len();
        let scale = {
            let s = y.iter().map(|v| v.abs()).sum::<f64>() / n as f64;
            if s.is_finite() && s > 0.0 {
                s
            } else {
                1.0
            }
        };
        if y.iter().all(|v| *v == y[0]) {
            // α₁ = 1 makes a constant level a fixed point of the recursions.
            let mut fitted = Ces {
                season: CesSeason::None,
                lag: 1,
                params: params_from(CesSeason::None, &[1.0, 1.0]),
                states: Vec::new(),
                n: 0,
                adjustment: None,
                aicc: f64::MAX,
            };
            fitted.run(y);
            return Ok(fitted);
        }
        let native = search != CesSearch::Adjusted;
        // Candidate 1: non-seasonal CES, on the classically adjusted series when
        // the seasonality test passes (except in a purely native search). Its
        // errors are put back on the original scale (and the m − 1 free indices
        // counted) so that its AICc compares with the native seasonal forms
        // fitted to the raw series.
        let mut adjustment = None;
        let mut adjusted = y.to_vec();
        let mut extra_k = 0;
        if search != CesSearch::Native && m >= 2 && seasonal::is_seasonal(y, m) {
            if let Some(s) = Seasonality::classical(y, m) {
                adjusted = s.adjust(y);
                adjustment = Some(s);
                extra_k = m - 1;
            }
        }
        let weights: Option<Vec<f64>> = adjustment.as_ref().and_then(|s: &Seasonality| {
            (s.kind == seasonal::SeasonKind::Multiplicative)
                .then(|| (0..n).map(|t| s.index_at(t)).collect())
        });
        let scaled_adj: Vec<f64> = adjusted.iter().map(|v| v / scale).collect();
        let mut best: Option<Candidate> =
            fit_one(&scaled_adj, CesSeason::None, 1, weights.as_deref(), extra_k).map(
                |(params, aicc)| Candidate {
                    season: CesSeason::None,
                    params,
                    aicc,
                    adjusted: adjustment.is_some(),
                },
            );
        // Candidates 2–4: the native seasonal forms on the raw series.
        if native && m >= 2 && n >= 2 * m {
            let scaled: Vec<f64> = y.iter().map(|v| v / scale).collect();
            for season in [CesSeason::Simple, CesSeason::Partial, CesSeason::Full] {
                if n <= season.n_params() + 1 {
                    continue;
                }
                if let Some((params, aicc)) = fit_one(&scaled, season, m, None, 0) {
                    if best.as_ref().is_none_or(|b| aicc < b.aicc) {
                        best = Some(Candidate {
                            season,
                            params,
                            aicc,
                            adjusted: false,
                        });
                    }
                }
            }
        }
        let best = best.ok_or("no CES model could be fitted")?;
        let (season, params, aicc) = (best.season, best.params, best.aicc);
        let (work, adjustment) = if best.adjusted {
            (adjusted, adjustment)
        } else {
            (y.to_vec(), None)
        };
        let lag = if season == CesSeason::None { 1 } else { m };
        let mut fitted = Ces {
            season,
            lag: lag as u64,
            params,
            states: Vec::new(),
            n: 0,
            adjustment,
            aicc,
        };
        fitted.run(&work);
        if fitted.states.iter().flatten().any(|v| !v.is_finite()) {
            return Err("CES recursions diverged".into());
        }
        Ok(fitted)
    }

    /// Recomputes the states over `y` (non-empty) with the fitted parameters.
    fn run(&mut self, y: &[f64]) {
        self.n = y.len() as u64;
        let lag = self.lag.max(1) as usize;
        let init = initial_rows(y, self.season, lag);
        let (_, rows) = backfit(y, self.season, self.params, &init, None);
        self.states = rows;
    }

    /// Point forecasts 1..=h steps after the end of the training data: the
    /// no-error trajectory, its long range damped (`damp_long_range`).
    pub fn forecast(&self, h: usize) -> Vec<f64> {
        if self.states.is_empty() {
            return vec![0.0; h];
        }
        let mut f = Filter::new(self.season, self.params, &self.states);
        let mut a = Vec::with_capacity(h);
        let mut s = Vec::with_capacity(h);
        for _ in 0..h {
            let (pa, ps) = f.parts();
            a.push(pa);
            s.push(ps);
            f.update(pa + ps);
        }
        // The CES part runs on lag 1 (on lag m in the simple seasonal form),
        // the full form's seasonal part on lag m; each is damped by its own
        // growth (see `damp_long_range`).
        let p = self.params;
        let lag = if self.season == CesSeason::Simple {
            self.lag.max(1) as usize
        } else {
            1
        };
        damp_long_range(&mut a, lag, trajectory_radius(p.alpha0, p.alpha1));
        if self.season == CesSeason::Full {
            let m = self.lag.max(1) as usize;
            damp_long_range(&mut s, m, trajectory_radius(p.beta0, p.beta1));
        }
        let mut out: Vec<f64> = a.iter().zip(&s).map(|(x, y)| x + y).collect();
        if let Some(s) = &self.adjustment {
            s.restore(&mut out, self.n as usize);
        }
        // Overflow on absurd inputs: hold the last finite value.
        let mut last = self.states.last().map(|r| r[0]).unwrap_or(0.0);
        if !last.is_finite() {
            last = 0.0;
        }
        for v in out.iter_mut() {
            if v.is_finite() {
                last = *v;
            } else {
                *v = last;
            }
        }
        out
    }

    /// The chosen model, e.g. `CES(n)`, `CES(f)[12]` or, on a seasonally
    /// adjusted series, `CES(n)*season[12]`.
    pub fn describe(&self) -> String {
        let mut out = format!("CES({})", self.season.letter());
        if self.season != CesSeason::None {
            out.push_str(&format!("[{}]", self.lag));
        }
        if let Some(s) = &self.adjustment {
            let op = match s.kind {
                seasonal::SeasonKind::Multiplicative => '*',
                seasonal::SeasonKind::Additive => '+',
            };
            out.push_str(&format!("{op}season[{}]", s.indices.len()));
        }
        out
    }

    /// Same model and parameters, states re-estimated over `y` (O(n)).
    pub fn refilter(&self, y: &[f64]) -> Self {
        let mut out = self.clone();
        let clean: Vec<f64> = y.iter().copied().filter(|v| v.is_finite()).collect();
        if clean.is_empty() {
            return out;
        }
        let adjusted = match &self.adjustment {
            Some(s) => s.adjust(&clean),
            None => clean.clone(),
        };
        out.run(&adjusted);
        if out.states.iter().flatten().any(|v| !v.is_finite()) {
            // Degenerate: hold the last value.
            let last = clean[clean.len() - 1];
            out.season = CesSeason::None;
            out.lag = 1;
            out.params = params_from(CesSeason::None, &[1.0, 1.0]);
            out.states = vec![[last, 0.0, 0.0, 0.0]];
            out.adjustment = None;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Lcg;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn recursions_match_the_complex_form() {
        // Non-seasonal CES: ℓ_t + i c_t = (ℓ_{t-1} + i c_{t-1})·(1 − α)... written
        // out in real terms; check one step against a hand computation.
        let p = CesParams {
            alpha0: 1.2,
            alpha1: 0.9,
            beta0: 0.0,
            beta1: 0.0,
        };
        let mut f = Filter::new(CesSeason::None, p, &[[10.0, 8.0, 0.0, 0.0]]);
        assert_eq!(f.predict(), 10.0);
        let e = f.update(13.0);
        assert_eq!(e, 3.0);
        let row = f.rows()[0];
        // ℓ = 10 − (1 − 0.9)·8 + (1.2 − 0.9)·3 = 10 − 0.8 + 0.9
        assert!(close(row[0], 10.1, 1e-12), "{row:?}");
        // c = 10 + (1 − 1.2)·8 + (1.2 + 0.9)·3 = 10 − 1.6 + 6.3
        assert!(close(row[1], 14.7, 1e-12), "{row:?}");
    }

    #[test]
    fn constant_series_forecasts_the_constant() {
        for len in [1, 2, 3, 5, 30, 60] {
            let y = vec![7.25; len];
            for m in [1, 4, 12] {
                let fit = Ces::fit(&y, m).unwrap();
                for v in fit.forecast(15) {
                    assert!(
                        close(v, 7.25, 1e-6),
                        "len {len} m {m} {}: {v}",
                        fit.describe()
                    );
                }
            }
        }
    }

    #[test]
    fn seasonal_pattern_repeats() {
        let pattern = [3.0, -1.0, 5.0, 0.5, -2.0, 1.0];
        let y: Vec<f64> = (0..72).map(|t| 100.0 + pattern[t % 6]).collect();
        // Default: CES(n) on the classically adjusted series.
        let fit = Ces::fit(&y, 6).unwrap();
        assert!(fit.adjustment.is_some(), "{}", fit.describe());
        // Native: one of the seasonal forms, chosen by AICc.
        let native = Ces::fit_with(&y, 6, CesSearch::Native).unwrap();
        assert_ne!(native.season, CesSeason::None, "{}", native.describe());
        for fit in [fit, native] {
            let f = fit.forecast(12);
            for (k, v) in f.iter().enumerate() {
                let want = 100.0 + pattern[(72 + k) % 6];
                assert!(
                    (v - want).abs() < 0.05,
                    "{k}: {v} vs {want} ({})",
                    fit.describe()
                );
            }
        }
    }

    #[test]
    fn follows_a_trend() {
        let y: Vec<f64> = Lcg::noise(80, 3)
            .iter()
            .enumerate()
            .map(|(t, e)| 20.0 + 0.5 * t as f64 + e)
            .collect();
        let fit = Ces::fit(&y, 1).unwrap();
        let f = fit.forecast(10);
        assert!(f[9] > f[0] && f[0] > 55.0, "{f:?}");
    }

    #[test]
    fn refilter_on_training_data_reproduces_the_forecast() {
        let pattern = [1.0, 4.0, -2.0, -3.0];
        let y: Vec<f64> = Lcg::noise(60, 9)
            .iter()
            .enumerate()
            .map(|(t, e)| 50.0 + 0.3 * t as f64 + pattern[t % 4] + 2.0 * e)
            .collect();
        for (m, search) in [
            (1, CesSearch::Adjusted),
            (4, CesSearch::Adjusted),
            (4, CesSearch::Native),
            (4, CesSearch::Both),
        ] {
            let fit = Ces::fit_with(&y, m, search).unwrap();
            let again = fit.refilter(&y);
            assert_eq!(fit.forecast(8), again.forecast(8));
            let prefix = fit.refilter(&y[..30]);
            assert_eq!(prefix.params, fit.params);
            assert!(prefix.forecast(8).iter().all(|v| v.is_finite()));
            for short in [&y[..1], &y[..3], &[][..]] {
                assert!(fit
                    .refilter(short)
                    .forecast(5)
                    .iter()
                    .all(|v| v.is_finite()));
            }
        }
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
            for m in [1, 4, 12] {
                for search in [CesSearch::Adjusted, CesSearch::Native, CesSearch::Both] {
                    let fit = Ces::fit_with(y, m, search).unwrap();
                    let f = fit.forecast(24);
                    assert!(f.iter().all(|v| v.is_finite()), "{} {f:?}", fit.describe());
                    let r = fit.refilter(&y[..1]);
                    assert!(r.forecast(3).iter().all(|v| v.is_finite()));
                }
            }
        }
        assert!(Ces::fit(&[], 1).is_err());
        assert!(Ces::fit(&[f64::INFINITY], 1).is_err());
    }

    /// The no-error trajectory of a fitted model, undamped.
    fn raw_trajectory(fit: &Ces, h: usize) -> Vec<f64> {
        let mut f = Filter::new(fit.season, fit.params, &fit.states);
        (0..h)
            .map(|_| {
                let v = f.predict();
                f.update(v);
                v
            })
            .collect()
    }

    /// Every forecast up to step 10,000 is finite and stays within
    /// [min − 2·range, max + 2·range] of `y`; returns the forecast.
    fn assert_bounded(y: &[f64], fit: &Ces) -> Vec<f64> {
        let band = crate::models::Plausible::of(y).expect("a series with spread");
        let f = fit.forecast(10_000);
        for (k, v) in f.iter().enumerate() {
            assert!(
                v.is_finite() && band.holds(&[*v]),
                "step {}: {v} outside {band:?} ({})",
                k + 1,
                fit.describe()
            );
        }
        f
    }

    #[test]
    fn straight_line_forecast_does_not_explode_up_to_step_10000() {
        // 5, 7, …, 83: CES fits an exponential trend (r ≈ 1.0365), which
        // forecast 2,994 at step 100 and 1e157 at step 10,000 undamped.
        let y: Vec<f64> = (0..40).map(|t| 5.0 + 2.0 * t as f64).collect();
        let line = |step: usize| 83.0 + 2.0 * step as f64;
        for search in [CesSearch::Adjusted, CesSearch::Native] {
            let fit = Ces::fit_with(&y, 1, search).unwrap();
            let f = fit.forecast(10_000);
            assert!(f.iter().all(|v| v.is_finite()), "{}", fit.describe());
            // The trend is followed and never faster than the line itself.
            assert!(f[0] > 83.0 && f[9] > f[0], "{:?}", &f[..10]);
            for (k, v) in f.iter().enumerate().skip(99) {
                assert!(*v <= line(k + 1), "step {}: {v}", k + 1);
            }
            // It converges: the last 5,000 steps add (almost) nothing.
            assert!((f[9_999] - f[4_999]).abs() < 1e-6, "{}", f[9_999]);
            assert!(f[9_999] < 300.0, "{}", f[9_999]);
        }
    }

    #[test]
    fn short_series_forecast_stays_in_range_up_to_step_10000() {
        // [3, 5, 4]: r ≈ 1.0014 compounded to 3.6e6 at step 10,000 undamped.
        let y = [3.0, 5.0, 4.0];
        for search in [CesSearch::Adjusted, CesSearch::Native] {
            let fit = Ces::fit_with(&y, 1, search).unwrap();
            assert_bounded(&y, &fit);
        }
    }

    #[test]
    fn seasonal_trending_forecast_stays_in_range_up_to_step_10000() {
        // Monthly, linear trend, multiplicative season: the adjusted CES(n)
        // and the native seasonal forms (full CES here) grew to 1e37–1e38.
        let y: Vec<f64> = Lcg::noise(144, 5)
            .iter()
            .enumerate()
            .map(|(t, e)| {
                let season = 1.0 + 0.2 * (t as f64 * std::f64::consts::PI / 6.0).sin();
                (100.0 + 3.0 * t as f64) * season + 4.0 * e
            })
            .collect();
        for search in [CesSearch::Adjusted, CesSearch::Native, CesSearch::Both] {
            let fit = Ces::fit_with(&y, 12, search).unwrap();
            assert_bounded(&y, &fit);
        }
    }

    #[test]
    fn long_range_damping_keeps_the_doubling_time_as_fitted() {
        let y: Vec<f64> = (0..40).map(|t| 5.0 + 2.0 * t as f64).collect();
        let fit = Ces::fit(&y, 1).unwrap();
        let r = trajectory_radius(fit.params.alpha0, fit.params.alpha1);
        assert!(r > 1.0 && r <= MAX_TRAJECTORY_RADIUS, "{r}");
        let doubling = (std::f64::consts::LN_2 / r.ln()).ceil() as usize;
        assert!(doubling >= 18, "{doubling}");
        let (raw, damped) = (raw_trajectory(&fit, 60), fit.forecast(60));
        assert_eq!(&raw[..doubling], &damped[..doubling]);
        // Beyond it, the forecast still rises, but more slowly than undamped.
        for k in doubling..60 {
            assert!(damped[k] > damped[k - 1] && damped[k] < raw[k], "{k}");
        }
        // A trajectory that does not grow (r = √0.9 here) is not touched.
        let mut fit = fit;
        fit.params.alpha0 = 1.2;
        fit.params.alpha1 = 0.9;
        assert!(trajectory_radius(1.2, 0.9) < 1.0);
        assert_eq!(raw_trajectory(&fit, 500), fit.forecast(500));
    }

    #[test]
    fn serde_round_trip_is_bit_exact() {
        let pattern = [1.0, 4.0, -2.0, -3.0];
        let y: Vec<f64> = Lcg::noise(48, 2)
            .iter()
            .enumerate()
            .map(|(t, e)| 30.0 + pattern[t % 4] + e)
            .collect();
        let fit = Ces::fit(&y, 4).unwrap();
        let bytes = postcard::to_allocvec(&fit).unwrap();
        let back: Ces = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, fit);
        let (a, b) = (fit.forecast(9), back.forecast(9));
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
}
