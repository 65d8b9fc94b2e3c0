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
}

impl Method {
    pub const ALL: [Method; 13] = [
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
    ];

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
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
#[error("unknown method '{0}'; expected one of: auto, naive, seasonal_naive, drift, mean, naive2, ses, ets, arima, theta, optimized_theta, dynamic_theta, ces")]
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
