//! AutoARIMA: seasonal ARIMA(p,d,q)(P,D,Q)[m] with an optional mean or drift,
//! chosen automatically as in Hyndman & Khandakar (2008, "Automatic time
//! series forecasting: the forecast package for R").
//!
//! - Differencing: D from a seasonal-strength rule, then d from repeated KPSS
//!   tests on the (seasonally differenced) series ([`unitroot`]); d ≤ 1
//!   (see [`MAX_D`]).
//! - Orders: the stepwise search over p, q ≤ 5 and P, Q ≤ 2 by AICc
//!   ([`search`]), each candidate estimated by conditional sum of squares
//!   (fast; the forecast package's `approximation` mode), then the winner
//!   refined by the exact Gaussian likelihood (the next best if its refit is
//!   not admissible), computed by a Kalman filter with the O(r)-per-step
//!   Chandrasekhar recursions ([`likelihood`]); both fits use a small
//!   Levenberg–Marquardt ([`lm`]). Models with AR or MA roots within 1.01 of
//!   the unit circle are rejected.
//! - The serialized state is the coefficients, the Kalman state after the last
//!   observation and the last d + D·m observations (to undo the differencing).
//!
//! Series longer than [`MAX_FIT_LEN`] (or ten seasons) are estimated on
//! their most recent part, then filtered in full.
//!
//! The data are centred and scaled before estimation; ARIMA is affine
//! equivariant, so the mean/drift are mapped back afterwards and the final
//! state is computed on the original values.

mod likelihood;
mod lm;
mod poly;
mod search;
mod unitroot;

#[cfg(test)]
mod tests;

use likelihood::{Coefs, Kalman, Order};
use poly::{difference, differencing, expand_ar, expand_ma};
use search::{Candidate, Estimation, Space};
use serde::{Deserialize, Serialize};

/// Estimation used for the candidates of the search (the winner is always
/// refined by the exact likelihood).
const SEARCH_ESTIMATION: Estimation = Estimation::Css;
/// How many of the best CSS candidates may be tried for the exact refit
/// before settling on the CSS estimates.
const REFIT_TRIES: usize = 3;

/// Most first differences. Hyndman & Khandakar allow 2, but a twice
/// differenced model extrapolates the latest change of slope: on M3 allowing
/// d = 2 (even with a much stricter KPSS level for the second difference)
/// costs about 0.35 sMAPE and 0.07 MASE overall, so one difference (plus an
/// optional drift) is the limit.
const MAX_D: usize = 1;
/// Differenced observations used for estimation (at least ten seasons):
/// longer series are fitted on their most recent part.
const MAX_FIT_LEN: usize = 2000;
/// Largest expanded AR order refined by the exact likelihood (its stationary
/// start-up solves a dense system of that size at every evaluation).
const MAX_EXACT_AR: usize = 120;

/// A fitted seasonal ARIMA model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arima {
    /// Season length (1 = none).
    m: usize,
    /// Orders of differencing: d (lag 1) and D (lag m).
    d: usize,
    sd: usize,
    /// φ_1..φ_p, θ_1..θ_q, Φ_1..Φ_P, Θ_1..Θ_Q (R's sign conventions:
    /// (1 − φ(B))(1 − Φ(B^m)) w_t = (1 + θ(B))(1 + Θ(B^m)) e_t).
    ar: Vec<f64>,
    ma: Vec<f64>,
    sar: Vec<f64>,
    sma: Vec<f64>,
    /// Whether a mean (d + D = 0) or drift (d + D = 1) was estimated.
    constant: bool,
    /// Mean of the differenced series w (0 without a constant).
    mean: f64,
    /// One-step innovation variance.
    sigma2: f64,
    /// Predicted ARMA state (Harvey form) for the step after the data.
    state: Vec<f64>,
    /// The last d + D·m observations, oldest first.
    tail: Vec<f64>,
}

impl Arima {
    /// Fits the automatic choice of the family to `y` with season length `m`
    /// (1 = none). Err only for an empty or non-finite series.
    pub fn fit(y: &[f64], m: usize) -> Result<Self, String> {
        if y.is_empty() {
            return Err("empty series".into());
        }
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(format!("value at index {i} is not finite"));
        }
        let n = y.len();
        // A season longer than the series cannot be estimated.
        let m = if m > n { 1 } else { m.max(1) };
        if unitroot::is_constant(y) {
            return Ok(Self::mean_model(y[0], m));
        }
        if n < 4 {
            return Ok(Self::naive(y, m));
        }
        // Centre and scale: the estimation tolerances are then scale-free.
        let loc = y.iter().sum::<f64>() / n as f64;
        let scale = (y.iter().map(|v| (v - loc).powi(2)).sum::<f64>() / n as f64).sqrt();
        if !(scale > 0.0 && scale.is_finite()) {
            return Ok(Self::naive(y, m));
        }
        let ys: Vec<f64> = y.iter().map(|v| (v - loc) / scale).collect();

        // Seasonal differencing only when enough data remain to fit after it.
        let mut sd = if m > 1 { unitroot::nsdiffs(&ys, m) } else { 0 };
        if sd == 1 && n < m + 5 {
            sd = 0;
        }
        let d = unitroot::ndiffs(&difference(&ys, 0, sd, m), MAX_D);
        let w = difference(&ys, d, sd, m);
        let order_sum = d + sd;
        let space = Space {
            max_p: 5.min(n / 3),
            max_q: 5.min(n / 3),
            max_sp: if m > 1 { 2.min(n / (3 * m)) } else { 0 },
            max_sq: if m > 1 { 2.min(n / (3 * m)) } else { 0 },
            allow_constant: order_sum <= 1,
            force_constant: order_sum == 0,
        };
        // Long series: estimate on the recent part only (the search cost is
        // linear in its length); the state still comes from all the data.
        let fit_len = MAX_FIT_LEN.max(10 * m);
        let w_fit = &w[w.len().saturating_sub(fit_len)..];
        let chosen = if w_fit.len() < 3 || unitroot::is_constant(w_fit) {
            None
        } else {
            Self::choose(w_fit, m, &space)
        };
        let chosen = chosen.unwrap_or_else(|| {
            // ARIMA(0,d,0)(0,D,0), with the sample mean/drift when allowed.
            let constant = space.allow_constant && !w_fit.is_empty();
            let beta = if constant {
                vec![w_fit.iter().sum::<f64>() / w_fit.len() as f64]
            } else {
                vec![]
            };
            Candidate {
                order: Order {
                    p: 0,
                    q: 0,
                    sp: 0,
                    sq: 0,
                    constant,
                },
                beta,
                ic: f64::INFINITY,
            }
        });
        let c = Coefs::split(&chosen.order, &chosen.beta);
        let mean = if chosen.order.constant {
            c.mean * scale + if order_sum == 0 { loc } else { 0.0 }
        } else {
            0.0
        };
        let mut model = Self {
            m,
            d,
            sd,
            ar: c.ar.to_vec(),
            ma: c.ma.to_vec(),
            sar: if m > 1 { c.sar.to_vec() } else { vec![] },
            sma: if m > 1 { c.sma.to_vec() } else { vec![] },
            constant: chosen.order.constant,
            mean,
            sigma2: 0.0,
            state: vec![],
            tail: vec![],
        };
        match model.filtered(y) {
            Some((state, tail, sigma2)) => {
                model.state = state;
                model.tail = tail;
                model.sigma2 = sigma2;
                Ok(model)
            }
            None => Ok(Self::naive(y, m)),
        }
    }

    /// Stepwise search by CSS, then the exact refit of the best candidates.
    fn choose(w: &[f64], m: usize, space: &Space) -> Option<Candidate> {
        let candidates = search::stepwise(w, m, space, SEARCH_ESTIMATION);
        if SEARCH_ESTIMATION == Estimation::CssMl {
            return candidates.into_iter().next();
        }
        let mut work = likelihood::Work::default();
        for c in candidates.iter().take(REFIT_TRIES) {
            if c.order.p + c.order.sp * m > MAX_EXACT_AR {
                // The exact start-up costs O(p*³): keep the CSS estimates.
                return Some(c.clone());
            }
            if let Some(e) = search::fit_exact(w, m, c, &mut work) {
                if e.ic.is_finite() {
                    return Some(e);
                }
            }
        }
        candidates.into_iter().next()
    }

    /// Point forecasts 1..=h steps after the data. Finite, never NaN.
    pub fn forecast(&self, h: usize) -> Vec<f64> {
        let fallback = self.tail.last().copied().unwrap_or(self.mean);
        let fallback = if fallback.is_finite() { fallback } else { 0.0 };
        if !self.shape_ok(true) {
            return vec![fallback; h];
        }
        let (a, b) = self.expanded();
        let r = a.len().max(b.len() + 1);
        let m = self.m.max(1);
        let mut st = vec![0.0; r];
        if self.state.len() == r {
            st.copy_from_slice(&self.state);
        }
        let delta = differencing(self.d, self.sd, m);
        let mut hist = self.tail.clone();
        let mut out = Vec::with_capacity(h);
        for _ in 0..h {
            let z = st[0];
            let s0 = st[0];
            for i in 0..r - 1 {
                st[i] = a.get(i).copied().unwrap_or(0.0) * s0 + st[i + 1];
            }
            st[r - 1] = a.get(r - 1).copied().unwrap_or(0.0) * s0;
            let mut v = z + self.mean;
            let len = hist.len();
            for (i, c) in delta.iter().enumerate() {
                v -= c * hist[len - 1 - i];
            }
            if !v.is_finite() {
                v = out.last().copied().unwrap_or(fallback);
            }
            hist.push(v);
            out.push(v);
        }
        out
    }

    /// Whether the model has a seasonal part (differencing or terms at lag m).
    pub fn is_seasonal(&self) -> bool {
        self.m > 1 && (self.sar.len() + self.sd + self.sma.len()) > 0
    }

    /// The chosen model, e.g. `ARIMA(0,1,1)(0,1,1)[12]` or `ARIMA(1,1,0) with drift`.
    pub fn describe(&self) -> String {
        let mut s = format!("ARIMA({},{},{})", self.ar.len(), self.d, self.ma.len());
        if self.is_seasonal() {
            s += &format!(
                "({},{},{})[{}]",
                self.sar.len(),
                self.sd,
                self.sma.len(),
                self.m
            );
        }
        if self.constant {
            s += match self.d + self.sd {
                0 => " with non-zero mean",
                _ => " with drift",
            };
        }
        s
    }

    /// Same model and coefficients, state recomputed by filtering `y`
    /// (no optimisation, O(n)). Falls back to a naive model when `y` is too
    /// short to undo the differencing.
    pub fn refilter(&self, y: &[f64]) -> Self {
        match self.filtered(y) {
            Some((state, tail, _)) => Self {
                state,
                tail,
                ..self.clone()
            },
            None => Self::naive(y, self.m),
        }
    }

    /// One-step innovation variance of the fitted model.
    pub fn sigma2(&self) -> f64 {
        self.sigma2
    }

    /// Variance of the h-step forecast errors, steps 1..=h: σ² Σ_{j<h} ψ_j²
    /// with ψ the MA(∞) weights of the full (differenced) model.
    pub fn forecast_variance(&self, h: usize) -> Vec<f64> {
        if !self.shape_ok(true) {
            return (1..=h).map(|i| self.sigma2 * i as f64).collect();
        }
        let (a, b) = self.expanded();
        let delta = differencing(self.d, self.sd, self.m.max(1));
        // 1 − Σ c_i B^i = (1 − Σ a_i B^i)(1 + Σ δ_i B^i)
        let mut c = vec![0.0; a.len() + delta.len()];
        for (i, v) in a.iter().enumerate() {
            c[i] += v;
        }
        for (j, dv) in delta.iter().enumerate() {
            c[j] -= dv;
            for (i, v) in a.iter().enumerate() {
                c[i + j + 1] += v * dv;
            }
        }
        let mut psi = vec![0.0; h];
        let mut acc = 0.0;
        let mut out = Vec::with_capacity(h);
        for j in 0..h {
            let mut v = if j == 0 {
                1.0
            } else {
                b.get(j - 1).copied().unwrap_or(0.0)
            };
            for (i, ci) in c.iter().enumerate().take(j) {
                v += ci * psi[j - 1 - i];
            }
            psi[j] = v;
            acc += v * v;
            let var = self.sigma2 * acc;
            out.push(if var.is_finite() { var } else { f64::MAX });
        }
        out
    }

    /// Whether the orders are consistent (always, unless the state was
    /// deserialized from something else), so that nothing overflows.
    fn shape_ok(&self, check_tail: bool) -> bool {
        const MAX_LEN: usize = 10_000_000;
        let m = self.m.max(1);
        let len = |seasonal: usize, plain: usize| {
            seasonal
                .checked_mul(m)
                .and_then(|v| v.checked_add(plain))
                .filter(|v| *v <= MAX_LEN)
        };
        match (
            len(self.sd, self.d),
            len(self.sar.len(), self.ar.len()),
            len(self.sma.len(), self.ma.len()),
        ) {
            (Some(lag), Some(_), Some(_)) => !check_tail || lag == self.tail.len(),
            _ => false,
        }
    }

    /// Expanded AR and MA coefficients of the ARMA part.
    fn expanded(&self) -> (Vec<f64>, Vec<f64>) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        expand_ar(&self.ar, &self.sar, self.m.max(1), &mut a);
        expand_ma(&self.ma, &self.sma, self.m.max(1), &mut b);
        (a, b)
    }

    /// Kalman state, tail and innovation variance after filtering `y`.
    fn filtered(&self, y: &[f64]) -> Option<(Vec<f64>, Vec<f64>, f64)> {
        if !self.shape_ok(false) {
            return None;
        }
        let m = self.m.max(1);
        let lag = self.d + self.sd * m;
        if y.len() < lag.max(1) || y.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let w = difference(y, self.d, self.sd, m);
        let (a, b) = self.expanded();
        let mut kf = Kalman::default();
        let run = kf.run(&w, self.mean, &a, &b, None)?;
        if kf.state.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let sigma2 = if w.is_empty() {
            0.0
        } else {
            run.ssq / w.len() as f64
        };
        Some((kf.state, y[y.len() - lag..].to_vec(), sigma2))
    }

    /// ARIMA(0,1,0): the last value repeated (0 for an empty series).
    fn naive(y: &[f64], m: usize) -> Self {
        let last = y.last().copied().filter(|v| v.is_finite()).unwrap_or(0.0);
        let sigma2 = if y.len() > 1 {
            y.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum::<f64>() / (y.len() - 1) as f64
        } else {
            0.0
        };
        Self {
            m: m.max(1),
            d: 1,
            sd: 0,
            ar: vec![],
            ma: vec![],
            sar: vec![],
            sma: vec![],
            constant: false,
            mean: 0.0,
            sigma2: if sigma2.is_finite() { sigma2 } else { 0.0 },
            state: vec![0.0],
            tail: vec![last],
        }
    }

    /// ARIMA(0,0,0) with mean `value` (for a constant series).
    fn mean_model(value: f64, m: usize) -> Self {
        Self {
            m: m.max(1),
            d: 0,
            sd: 0,
            ar: vec![],
            ma: vec![],
            sar: vec![],
            sma: vec![],
            constant: true,
            mean: value,
            sigma2: 0.0,
            state: vec![0.0],
            tail: vec![],
        }
    }
}
