//! Model families, each in its own module, and the [`State`] enum that holds
//! any fitted one.

pub mod arima;
pub mod baselines;
pub mod ces;
pub mod ets;
pub mod theta;

use crate::Method;
use serde::{Deserialize, Serialize};
use theta::ThetaVariant;

/// The fitted state of any model family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum State {
    Naive(baselines::Naive),
    SeasonalNaive(baselines::SeasonalNaive),
    Drift(baselines::Drift),
    Mean(baselines::Mean),
    Ses(baselines::Ses),
    Ets(ets::Ets),
    Arima(arima::Arima),
    Theta(theta::Theta),
    Ces(ces::Ces),
}

impl State {
    pub fn forecast(&self, h: usize) -> Vec<f64> {
        match self {
            State::Naive(s) => s.forecast(h),
            State::SeasonalNaive(s) => s.forecast(h),
            State::Drift(s) => s.forecast(h),
            State::Mean(s) => s.forecast(h),
            State::Ses(s) => s.forecast(h),
            State::Ets(s) => s.forecast(h),
            State::Arima(s) => s.forecast(h),
            State::Theta(s) => s.forecast(h),
            State::Ces(s) => s.forecast(h),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            State::Naive(_) => "Naive".into(),
            State::SeasonalNaive(s) => format!("SeasonalNaive(m={})", s.last_season.len()),
            State::Drift(_) => "Drift".into(),
            State::Mean(_) => "Mean".into(),
            State::Ses(s) => format!("SES(alpha={:.3})", s.alpha),
            State::Ets(s) => s.describe(),
            State::Arima(s) => s.describe(),
            State::Theta(s) => s.describe(),
            State::Ces(s) => s.describe(),
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
        Method::Ets => ets::Ets::fit(y, m).map(State::Ets),
        Method::Arima => arima::Arima::fit(y, m).map(State::Arima),
        Method::Theta => theta::Theta::fit(y, m, ThetaVariant::Standard).map(State::Theta),
        Method::OptimizedTheta => {
            theta::Theta::fit(y, m, ThetaVariant::Optimized).map(State::Theta)
        }
        Method::DynamicTheta => theta::Theta::fit(y, m, ThetaVariant::Dynamic).map(State::Theta),
        Method::Ces => ces::Ces::fit(y, m).map(State::Ces),
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
