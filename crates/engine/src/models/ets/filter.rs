//! The ETS recursion: one pass over the data that updates level, trend and
//! season and accumulates the log-likelihood terms, plus point forecasts.
//!
//! The state update is written in the smoothing ("recurrence") form, which is
//! the same for additive and multiplicative errors; the error type only changes
//! the likelihood. Seasonal states live in a ring: `season[t % m]` is the index
//! that applies at time `t`, and is overwritten with the index for `t + m`.

use super::{EtsSpec, SeasonType, TrendType};

/// Smoothing parameters (error-correction form: `beta <= alpha`, `gamma <= 1 - alpha`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Params {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    pub phi: f64,
}

/// What one pass over the data produced.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pass {
    /// Sum of squared (absolute or relative) one-step errors.
    pub sse: f64,
    /// Sum of log |one-step forecast| (only for multiplicative errors).
    pub sum_log: f64,
    pub level: f64,
    pub trend: f64,
}

/// Smallest one-step forecast allowed where a model divides by it.
const TINY: f64 = 1e-10;

/// `x > lim`, false for NaN (the negation reads as "not safely above").
#[inline(always)]
pub(super) fn gt(x: f64, lim: f64) -> bool {
    x > lim
}

const N: u8 = 0;
const A: u8 = 1;
const M: u8 = 2;

fn code_trend(t: TrendType) -> u8 {
    match t {
        TrendType::None => N,
        TrendType::Additive => A,
        TrendType::Multiplicative => M,
    }
}

fn code_season(s: SeasonType) -> u8 {
    match s {
        SeasonType::None => N,
        SeasonType::Additive => A,
        SeasonType::Multiplicative => M,
    }
}

/// Runs the recursion over `y` from `(level, trend, season)`; `season` (empty
/// for non-seasonal models) is updated in place. A NaN in `y` is a missing
/// observation: the states are carried forward by the model's prediction. `None` when the path leaves
/// the admissible region (non-positive forecast in a multiplicative model, or
/// non-finite numbers).
pub(super) fn run(
    spec: EtsSpec,
    p: &Params,
    level: f64,
    trend: f64,
    season: &mut [f64],
    y: &[f64],
) -> Option<Pass> {
    let mult_err = spec.error == super::ErrorType::Multiplicative;
    macro_rules! go {
        ($e:expr, $t:expr, $s:expr) => {
            if spec.damped {
                run_impl::<$e, $t, $s, true>(p, level, trend, season, y)
            } else {
                run_impl::<$e, $t, $s, false>(p, level, trend, season, y)
            }
        };
    }
    macro_rules! by_season {
        ($e:expr, $t:expr) => {
            match code_season(spec.season) {
                N => go!($e, $t, N),
                A => go!($e, $t, A),
                _ => go!($e, $t, M),
            }
        };
    }
    macro_rules! by_trend {
        ($e:expr) => {
            match code_trend(spec.trend) {
                N => by_season!($e, N),
                A => by_season!($e, A),
                _ => by_season!($e, M),
            }
        };
    }
    if mult_err {
        by_trend!(true)
    } else {
        by_trend!(false)
    }
}

#[inline(always)]
fn run_impl<const ME: bool, const T: u8, const S: u8, const D: bool>(
    p: &Params,
    mut l: f64,
    mut b: f64,
    season: &mut [f64],
    y: &[f64],
) -> Option<Pass> {
    let m = season.len();
    if S != N && m == 0 {
        return None;
    }
    let phi = if D { p.phi } else { 1.0 };
    let alpha = p.alpha;
    let beta_a = if alpha > 0.0 { p.beta / alpha } else { 0.0 };
    let gamma = p.gamma;
    let mut sse = 0.0;
    let mut sum_log = 0.0;
    let mut prod = 1.0;
    let mut j = 0usize;
    for &yt in y {
        let (q, phib) = match T {
            A => {
                let pb = phi * b;
                (l + pb, pb)
            }
            M => {
                let pb = if D { b.powf(phi) } else { b };
                (l * pb, pb)
            }
            _ => (l, 0.0),
        };
        let st = if S != N { season[j] } else { 0.0 };
        if yt.is_nan() {
            // A missing observation: no error, no correction; the states
            // move on as predicted (level to its forecast, trend damped,
            // season kept).
            l = q;
            if T != N {
                b = phib;
            }
            if S != N {
                j += 1;
                if j == m {
                    j = 0;
                }
            }
            continue;
        }
        let yhat = match S {
            A => q + st,
            M => q * st,
            _ => q,
        };
        let e = if ME {
            if !gt(yhat, TINY) {
                return None;
            }
            prod *= yhat;
            if !(1e-100..=1e100).contains(&prod) {
                sum_log += prod.ln();
                prod = 1.0;
            }
            (yt - yhat) / yhat
        } else {
            yt - yhat
        };
        sse += e * e;
        let adj = match S {
            A => yt - st,
            M => {
                if !gt(st, 0.0) {
                    return None;
                }
                yt / st
            }
            _ => yt,
        };
        let ln = q + alpha * (adj - q);
        match T {
            A => b = phib + beta_a * ((ln - l) - phib),
            M => {
                if !gt(l, 0.0) || !gt(ln, 0.0) {
                    return None;
                }
                b = phib + beta_a * (ln / l - phib);
                if !gt(b, 0.0) {
                    return None;
                }
            }
            _ => {}
        }
        match S {
            A => season[j] = st + gamma * (yt - q - st),
            M => {
                if !gt(q, TINY) {
                    return None;
                }
                season[j] = st + gamma * (yt / q - st);
            }
            _ => {}
        }
        l = ln;
        if S != N {
            j += 1;
            if j == m {
                j = 0;
            }
        }
    }
    if ME {
        sum_log += prod.ln();
    }
    if !(sse.is_finite() && sum_log.is_finite() && l.is_finite() && b.is_finite()) {
        return None;
    }
    Some(Pass {
        sse,
        sum_log,
        level: l,
        trend: b,
    })
}

/// Point forecasts 1..=h from the state at the end of the data, where
/// `season[k]` applies `k + 1` steps ahead. Non-finite values (a runaway
/// multiplicative trend) are replaced by the last finite forecast.
pub(super) fn forecast(
    spec: EtsSpec,
    phi: f64,
    level: f64,
    trend: f64,
    season: &[f64],
    h: usize,
) -> Vec<f64> {
    let phi = if spec.damped { phi } else { 1.0 };
    let mut out = Vec::with_capacity(h);
    let mut phisum = 0.0;
    let mut phipow = 1.0;
    let mut last = if level.is_finite() { level } else { 0.0 };
    for i in 0..h {
        phipow *= phi;
        phisum += phipow;
        let base = match spec.trend {
            TrendType::None => level,
            TrendType::Additive => level + phisum * trend,
            TrendType::Multiplicative => level * trend.powf(phisum),
        };
        let v = match spec.season {
            SeasonType::None => base,
            SeasonType::Additive if !season.is_empty() => base + season[i % season.len()],
            SeasonType::Multiplicative if !season.is_empty() => base * season[i % season.len()],
            _ => base,
        };
        let v = if v.is_finite() && v.abs() < 1e300 {
            v
        } else {
            last
        };
        last = v;
        out.push(v);
    }
    out
}
