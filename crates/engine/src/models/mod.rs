//! Model families, each in its own module, and the [`State`] enum that holds
//! any fitted one.

pub mod baselines;

use crate::Method;
use serde::{Deserialize, Serialize};

/// The fitted state of any model family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum State {
    Naive(baselines::Naive),
    SeasonalNaive(baselines::SeasonalNaive),
    Drift(baselines::Drift),
    Mean(baselines::Mean),
    Ses(baselines::Ses),
}

impl State {
    pub fn forecast(&self, h: usize) -> Vec<f64> {
        match self {
            State::Naive(s) => s.forecast(h),
            State::SeasonalNaive(s) => s.forecast(h),
            State::Drift(s) => s.forecast(h),
            State::Mean(s) => s.forecast(h),
            State::Ses(s) => s.forecast(h),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            State::Naive(_) => "Naive".into(),
            State::SeasonalNaive(s) => format!("SeasonalNaive(m={})", s.last_season.len()),
            State::Drift(_) => "Drift".into(),
            State::Mean(_) => "Mean".into(),
            State::Ses(s) => format!("SES(alpha={:.3})", s.alpha),
        }
    }
}

/// Fits one method; `Err` carries the reason it cannot be fitted here.
pub(crate) fn fit(method: Method, y: &[f64], m: usize) -> Result<State, String> {
    match method {
        Method::Naive => Ok(State::Naive(baselines::Naive::fit(y))),
        Method::SeasonalNaive => Ok(State::SeasonalNaive(baselines::SeasonalNaive::fit(y, m))),
        Method::Drift => Ok(State::Drift(baselines::Drift::fit(y))),
        Method::Mean => Ok(State::Mean(baselines::Mean::fit(y))),
        Method::Ses | Method::Auto => Ok(State::Ses(baselines::Ses::fit(y))),
        other => Err(format!("{other} is not implemented yet")),
    }
}

/// The model used when the requested one cannot be fitted: never fails.
pub(crate) fn fit_fallback(y: &[f64], _m: usize) -> State {
    State::Naive(baselines::Naive::fit(y))
}

/// Standard deviation of the one-step in-sample errors of a naive forecast,
/// a scale for the (provisional) normal intervals.
pub(crate) fn one_step_sigma(_state: &State, y: &[f64]) -> f64 {
    if y.len() < 2 {
        return 0.0;
    }
    let diffs: Vec<f64> = y.windows(2).map(|w| w[1] - w[0]).collect();
    (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt()
}
