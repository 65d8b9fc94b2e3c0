//! The vocabulary shared by the pipeline stages: model names and versions,
//! the jobs the gateway sends to workers and the answers that come back.
//!
//! Nothing here does I/O; every type is serde so any transport can carry it.

pub mod calendar;

use calendar::SeriesCalendar;
use engine::{Forecast, Horizon, Level, Method, ModelSpec, SeriesData};
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Name of a model: 1 to 64 characters from `A-Z a-z 0-9 _ - .`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ModelName(String);

/// Why a model name was refused.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("model name must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '-', '.', got '{0}'")]
pub struct BadModelName(pub String);

impl ModelName {
    /// The model the original `/fit_model` and `/forecast` endpoints act on.
    pub fn default_model() -> Self {
        Self("default".to_string())
    }

    pub fn parse(name: &str) -> Result<Self, BadModelName> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(Self(name.to_string()))
        } else {
            Err(BadModelName(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ModelName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Version number of a model; the first fit is version 1.
pub type Version = i64;

/// One series to fit, with the id clients use to ask for its forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedSeries {
    pub id: String,
    pub values: SeriesData,
    /// When the client gave timestamps: the series' frequency and last
    /// timestamp, kept with the fit so forecasts can carry future dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<SeriesCalendar>,
}

/// Fit `series` as `spec` says and store the result as `version` of `model`.
/// The version is registered as pending before this job is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitJob {
    pub model: ModelName,
    pub version: Version,
    pub spec: ModelSpec,
    pub series: Vec<NamedSeries>,
}

/// What the fit of one series produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeriesFit {
    pub id: String,
    /// The model actually chosen, e.g. `ETS(M,Ad,M)`.
    pub chosen: String,
    /// Why a simpler model was used, if one was.
    pub fallback: Option<String>,
    pub n_obs: usize,
    /// How many values were missing (`null`, or timestamps missing from
    /// the series' grid).
    #[serde(default)]
    pub n_missing: usize,
    /// The series' frequency and last timestamp, when it had timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<SeriesCalendar>,
}

/// The answer to a [`FitJob`] that succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    pub model: ModelName,
    pub version: Version,
    pub method: Method,
    pub series: Vec<SeriesFit>,
}

/// Forecast `version` of `model`, which is ready in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastJob {
    pub model: ModelName,
    pub version: Version,
    pub horizon: Horizon,
    pub levels: Vec<Level>,
    /// Only these series; all when `None`.
    pub series_ids: Option<Vec<String>>,
}

/// The forecast of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesForecast {
    pub id: String,
    pub forecast: Forecast,
}

/// The answer to a [`ForecastJob`] that succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastResult {
    pub model: ModelName,
    pub version: Version,
    pub series: Vec<SeriesForecast>,
}

/// Why a job failed, as a worker reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Error)]
pub enum JobError {
    /// The client asked for something that does not exist or cannot be done
    /// (e.g. an unknown series id): their fault, a JSend `fail`.
    #[error("{0}")]
    Invalid(String),
    /// Our fault: the engine, the store or the worker failed.
    #[error("{0}")]
    Failed(String),
    /// Our fault, but passing: the store (or another service the job needs)
    /// is unreachable now. Nothing was decided; the client may retry (503).
    #[error("{0}")]
    Unavailable(String),
}

pub type FitReply = Result<FitSummary, JobError>;
pub type ForecastReply = Result<ForecastResult, JobError>;
