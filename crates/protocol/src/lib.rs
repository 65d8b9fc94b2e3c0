//! The vocabulary shared by the pipeline stages: model names and versions,
//! the jobs the gateway sends to workers and the answers that come back.
//!
//! Nothing here does I/O; every type is serde so any transport can carry it.

pub mod calendar;
pub mod shard;

use calendar::{IndexAxis, Label, SeriesCalendar};
use engine::backtest::{BacktestOptions, Metrics};
use engine::{Forecast, Horizon, Interval, Level, Method, ModelSpec, SeriesData};
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// A tenant: the owner of models. API keys belong to one; a tenant sees its
/// own models only. The default tenant (no name) owns the models of a server
/// that runs without keys, and those made before tenants existed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Tenant(String);

/// Why a tenant name was refused.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("tenant name must be 1 to 64 characters from a-z, 0-9, '_', '-', got '{0}'")]
pub struct BadTenant(pub String);

impl Tenant {
    /// The tenant of a server without keys.
    pub fn default_tenant() -> Self {
        Self(String::new())
    }

    pub fn parse(name: &str) -> Result<Self, BadTenant> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
        if ok {
            Ok(Self(name.to_string()))
        } else {
            Err(BadTenant(name.to_string()))
        }
    }

    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }

    /// The name; empty for the default tenant.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_default() {
            f.write_str("(default)")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Name of a model: 1 to 64 characters from `A-Z a-z 0-9 _ - .`, owned by a
/// [`Tenant`].
///
/// The tenant rides inside the name so that everything keyed by a model (the
/// store's rows, the jobs on the broker, the workers' caches) is scoped by
/// tenant without anyone having to remember it: the key
/// ([`Self::as_str`], and the serde form) is `tenant/name`, or just `name`
/// for the default tenant ('/' never occurs in a name). Clients see
/// [`Self::name`] (also the `Display` form) and never the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelName {
    /// `tenant/name`, or `name` for the default tenant.
    key: String,
    /// Where the name starts in `key`.
    name_at: usize,
}

/// Why a model name was refused.
#[derive(Debug, Clone, PartialEq, Error)]
#[error(
    "model name must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '-', '.', and not '.' or '..', got '{0}'"
)]
pub struct BadModelName(pub String);

fn valid_model_name(name: &str) -> bool {
    // '.' and '..' would name the current or parent directory in a URL
    // path, so clients normalise them away and the model is unreachable.
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl ModelName {
    /// The model the original `/fit_model` and `/forecast` endpoints act on,
    /// in the default tenant.
    pub fn default_model() -> Self {
        Self::parse("default").expect("'default' is a valid name")
    }

    /// A model of the default tenant.
    pub fn parse(name: &str) -> Result<Self, BadModelName> {
        Self::parse_in(&Tenant::default_tenant(), name)
    }

    /// A model of `tenant`.
    pub fn parse_in(tenant: &Tenant, name: &str) -> Result<Self, BadModelName> {
        if !valid_model_name(name) {
            return Err(BadModelName(name.to_string()));
        }
        Ok(if tenant.is_default() {
            Self {
                key: name.to_string(),
                name_at: 0,
            }
        } else {
            Self {
                key: format!("{}/{name}", tenant.as_str()),
                name_at: tenant.as_str().len() + 1,
            }
        })
    }

    /// The model whose key ([`Self::as_str`]) is `key`, as stored or sent.
    pub fn from_key(key: &str) -> Result<Self, BadModelName> {
        match key.split_once('/') {
            None => Self::parse(key),
            Some((tenant, name)) => {
                let tenant = Tenant::parse(tenant).map_err(|_| BadModelName(key.to_string()))?;
                Self::parse_in(&tenant, name).map_err(|_| BadModelName(key.to_string()))
            }
        }
    }

    /// The default tenant's model `default` renamed into `tenant`.
    pub fn default_model_in(tenant: &Tenant) -> Self {
        Self::parse_in(tenant, "default").expect("'default' is a valid name")
    }

    /// The key that scopes this model by its tenant: `tenant/name`, or
    /// `name` for the default tenant. What stores and transports use.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The name as its tenant's clients know it.
    pub fn name(&self) -> &str {
        &self.key[self.name_at..]
    }

    pub fn tenant(&self) -> Tenant {
        Tenant(self.key[..self.name_at.saturating_sub(1)].to_string())
    }

    /// Serializes the client-facing [`Self::name`]; for answers
    /// (`#[serde(serialize_with = "protocol::ModelName::serialize_name")]`).
    pub fn serialize_name<N, S>(name: &N, s: S) -> Result<S::Ok, S::Error>
    where
        N: std::borrow::Borrow<ModelName>,
        S: serde::Serializer,
    {
        s.serialize_str(name.borrow().name())
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ModelName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key)
    }
}

impl<'de> Deserialize<'de> for ModelName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_key(&String::deserialize(d)?).map_err(serde::de::Error::custom)
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
    /// When the client gave integer positions instead (a table's `ds`):
    /// where they end, so forecast tables continue them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexAxis>,
}

/// Fit `series` as `spec` says and store the result as `version` of `model`.
/// The version is registered as pending before this job is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitJob {
    pub model: ModelName,
    pub version: Version,
    pub spec: ModelSpec,
    pub series: Vec<NamedSeries>,
    /// New observations instead of a fit: `series` holds the values that
    /// follow each series of this (ready) version of the model, appended by
    /// id; the new version filters its states forward with the same
    /// parameters (no refit). Series not named keep their state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Version>,
    /// Which shard of the version this job is, for a sharded fit (see
    /// [`shard`]); `None`: the whole fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<shard::Shard>,
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
    /// The series' last integer position and step, when its `ds` was
    /// integers (table fits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexAxis>,
}

/// The answer to a [`FitJob`] that succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    pub model: ModelName,
    pub version: Version,
    pub method: Method,
    pub series: Vec<SeriesFit>,
    /// The version new observations extended ([`FitJob::base`]): kept with
    /// the summary so that a replayed request answers the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Version>,
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
    /// Only the series of this shard of a version stored in shards (see
    /// [`shard`]), all of them in stored order; with `series_ids` `None`.
    /// A whole download of a large version asks shard by shard, so no
    /// answer (and no process) holds every series at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
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

/// Backtest `spec` on `series`, or on the training data of a stored
/// version (then `series` is empty and `spec` is the version's own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestJob {
    pub spec: ModelSpec,
    pub series: Vec<NamedSeries>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<(ModelName, Version)>,
    pub options: BacktestOptions,
    /// The job that runs this backtest, when it runs as one: the worker
    /// reports its progress there and stops once it is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

/// One window of a series' backtest (with `include_forecasts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestWindow {
    /// Index (0-based) of the window's last training value.
    pub cutoff: usize,
    /// Its timestamp (or integer position), when the series has a time axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutoff_ds: Option<Label>,
    /// The timestamps (or positions) of the forecast steps, when the series
    /// has a time axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ds: Option<Vec<Label>>,
    /// What happened (`null` where missing).
    pub actual: Vec<Option<f64>>,
    pub mean: Vec<f64>,
    pub intervals: Vec<Interval>,
}

/// The backtest of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesBacktestResult {
    pub id: String,
    pub metrics: Metrics,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<BacktestWindow>,
}

/// The answer to a [`BacktestJob`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestResult {
    pub method: Method,
    pub horizon: usize,
    pub n_windows: usize,
    pub step_size: usize,
    pub refit: bool,
    /// Means over series.
    pub metrics: Metrics,
    pub series: Vec<SeriesBacktestResult>,
}

pub type BacktestReply = Result<BacktestResult, JobError>;
pub type FitReply = Result<FitSummary, JobError>;
pub type ForecastReply = Result<ForecastResult, JobError>;

#[cfg(test)]
mod model_name_tests {
    use super::ModelName;

    #[test]
    fn dot_names_are_refused_but_dots_inside_names_are_not() {
        assert!(ModelName::parse(".").is_err());
        assert!(ModelName::parse("..").is_err());
        assert!(ModelName::parse("a\u{0}").is_err());
        assert!(ModelName::parse("a\u{202E}").is_err());
        assert!(ModelName::parse("...").is_ok());
        assert!(ModelName::parse("v1.2").is_ok());
    }
}

#[cfg(test)]
mod tenant_tests {
    use super::*;

    #[test]
    fn the_tenant_rides_in_the_key_not_in_the_name() {
        let acme = Tenant::parse("acme").unwrap();
        let m = ModelName::parse_in(&acme, "sales").unwrap();
        assert_eq!(
            (m.as_str(), m.name(), m.to_string()),
            ("acme/sales", "sales", "sales".into())
        );
        assert_eq!(m.tenant(), acme);
        let d = ModelName::parse("sales").unwrap();
        assert_eq!((d.as_str(), d.name()), ("sales", "sales"));
        assert!(d.tenant().is_default());
        assert_ne!(m, d);
        // The serde form is the key, so jobs carry the tenant.
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "\"acme/sales\"");
        assert_eq!(serde_json::from_str::<ModelName>(&json).unwrap(), m);
        assert_eq!(ModelName::from_key("sales").unwrap(), d);
    }

    #[test]
    fn clients_cannot_name_another_tenant() {
        assert!(ModelName::parse("acme/sales").is_err());
        assert!(ModelName::parse_in(&Tenant::parse("a").unwrap(), "b/c").is_err());
        assert!(ModelName::from_key("Acme/sales").is_err());
        assert!(ModelName::from_key("a/b/c").is_err());
        assert!(Tenant::parse("").is_err());
        assert!(Tenant::parse("a/b").is_err());
    }
}
