//! The forecasting methods a client can ask for by name.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use thiserror::Error;

/// A forecasting method. `Auto` is the default: the engine's best combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    #[default]
    Auto,
    Naive,
    SeasonalNaive,
    Drift,
    Mean,
    Naive2,
    Ses,
    Ets,
    Arima,
    Theta,
    OptimizedTheta,
    DynamicTheta,
    Ces,
    Croston,
    CrostonSba,
    CrostonOptimized,
    Tsb,
    Adida,
    Imapa,
    /// Dynamic harmonic regression: Fourier terms + ARIMA errors.
    Dhr,
}

impl Method {
    pub const ALL: [Method; 20] = [
        Method::Auto,
        Method::Naive,
        Method::SeasonalNaive,
        Method::Drift,
        Method::Mean,
        Method::Naive2,
        Method::Ses,
        Method::Ets,
        Method::Arima,
        Method::Theta,
        Method::OptimizedTheta,
        Method::DynamicTheta,
        Method::Ces,
        Method::Croston,
        Method::CrostonSba,
        Method::CrostonOptimized,
        Method::Tsb,
        Method::Adida,
        Method::Imapa,
        Method::Dhr,
    ];

    /// The intermittent-demand model family behind this method, if any.
    pub fn intermittent_kind(self) -> Option<crate::models::intermittent::Kind> {
        use crate::models::intermittent::Kind;
        match self {
            Method::Croston => Some(Kind::Croston),
            Method::CrostonSba => Some(Kind::Sba),
            Method::CrostonOptimized => Some(Kind::CrostonOptimized),
            Method::Tsb => Some(Kind::Tsb),
            Method::Adida => Some(Kind::Adida),
            Method::Imapa => Some(Kind::Imapa),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Naive => "naive",
            Method::SeasonalNaive => "seasonal_naive",
            Method::Drift => "drift",
            Method::Mean => "mean",
            Method::Naive2 => "naive2",
            Method::Ses => "ses",
            Method::Ets => "ets",
            Method::Arima => "arima",
            Method::Theta => "theta",
            Method::OptimizedTheta => "optimized_theta",
            Method::DynamicTheta => "dynamic_theta",
            Method::Ces => "ces",
            Method::Croston => "croston",
            Method::CrostonSba => "croston_sba",
            Method::CrostonOptimized => "croston_optimized",
            Method::Tsb => "tsb",
            Method::Adida => "adida",
            Method::Imapa => "imapa",
            Method::Dhr => "dhr",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
#[error("unknown method '{0}'; expected one of: auto, naive, seasonal_naive, drift, mean, naive2, ses, ets, arima, theta, optimized_theta, dynamic_theta, ces, croston, croston_sba, croston_optimized, tsb, adida, imapa, dhr")]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Method::ALL
            .into_iter()
            .find(|m| m.name() == wanted)
            .ok_or_else(|| UnknownMethod(s.to_string()))
    }
}
