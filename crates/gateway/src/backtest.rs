//! `POST /v1/backtest` (data in the body) and `POST /v1/models/{name}/backtest`
//! (on the training data of a version): rolling-origin evaluation, computed
//! by a worker through the transport; the gateway parses and answers.

use crate::body::{JsonBody, ModelPath};
use crate::handlers::{pending_error, store_error, transport_error, version_failed};
use crate::jsend::{success, ApiError, FieldErrors};
use crate::validate::{FitRequest, FromJson, V1Fit, MAX_LEVELS};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use engine::backtest::BacktestOptions;
use engine::{Horizon, Level, ModelSpec};
use protocol::{BacktestJob, BacktestResult, JobError, ModelName, Version};
use serde_json::{json, Map, Value};
use store::{StoreError, VersionStatus};

/// Most windows one backtest may ask for (each may be a fit).
pub const MAX_WINDOWS: usize = 100;

/// The backtest options of a body, read out of it.
fn options(body: &mut Map<String, Value>, errors: &mut FieldErrors) -> Option<BacktestOptions> {
    let mut bad = |field: &str, message: String| {
        errors.entry(field.to_string()).or_insert(message);
    };
    let int = |v: &Value| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64);
    let horizon = match body.remove("horizon") {
        None => {
            bad("horizon", "is required".into());
            None
        }
        Some(v) => match int(&v).map(Horizon::parse) {
            Some(Ok(h)) => Some(h),
            Some(Err(e)) => {
                bad("horizon", e.to_string());
                None
            }
            None => {
                bad("horizon", format!("must be an integer, got {v}"));
                None
            }
        },
    };
    let mut count = |name: &str, default: usize, max: usize| match body.remove(name) {
        None | Some(Value::Null) => default,
        Some(v) => match int(&v) {
            Some(n) if n >= 1 && n as usize <= max => n as usize,
            _ => {
                bad(
                    name,
                    format!("must be an integer between 1 and {max}, got {v}"),
                );
                default
            }
        },
    };
    let n_windows = count("n_windows", 1, MAX_WINDOWS);
    let step_size = count(
        "step_size",
        horizon.map_or(1, Horizon::get),
        engine::MAX_SERIES_LEN,
    );
    let mut flag = |name: &str, default: bool| match body.remove(name) {
        None | Some(Value::Null) => default,
        Some(Value::Bool(b)) => b,
        Some(v) => {
            bad(name, format!("must be true or false, got {v}"));
            default
        }
    };
    let refit = flag("refit", true);
    let include_forecasts = flag("include_forecasts", false);
    let levels = match body.remove("level") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) if items.len() <= MAX_LEVELS => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v.as_f64().map(Level::parse) {
                Some(Ok(l)) => Some(l),
                Some(Err(e)) => {
                    bad(&format!("level[{i}]"), e.to_string());
                    None
                }
                None => {
                    bad(&format!("level[{i}]"), format!("must be a number, got {v}"));
                    None
                }
            })
            .collect(),
        Some(v) => {
            bad(
                "level",
                format!("must be a list of at most {MAX_LEVELS} numbers, got {v}"),
            );
            vec![]
        }
    };
    Some(BacktestOptions {
        horizon: horizon?,
        n_windows,
        step_size,
        refit,
        levels,
        include_forecasts,
    })
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::field(
            "body",
            format!("expected a JSON object, got {other}"),
        )),
        Err(e) => Err(ApiError::field(
            "body",
            crate::validate::json_error_message(&e),
        )),
    }
}

fn fail(errors: FieldErrors) -> ApiError {
    ApiError::Fail(StatusCode::BAD_REQUEST, errors)
}

/// `POST /v1/backtest`: a fit body (any of its shapes and options) plus the
/// backtest options.
#[derive(Debug)]
pub struct BacktestBody {
    pub fit: FitRequest,
    pub options: BacktestOptions,
}

impl FromJson for BacktestBody {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let mut map = object(body)?;
        let mut errors = FieldErrors::new();
        let options = options(&mut map, &mut errors);
        // What is left is a fit body.
        let rest = serde_json::to_vec(&Value::Object(map))
            .map_err(|e| ApiError::field("body", e.to_string()))?;
        let fit = match V1Fit::from_json(&rest) {
            Ok(V1Fit(fit)) => Some(fit),
            Err(ApiError::Fail(_, more)) => {
                errors.extend(more);
                None
            }
            Err(e) => return Err(e),
        };
        match (fit, options) {
            (Some(fit), Some(options)) if errors.is_empty() => Ok(Self { fit, options }),
            _ => Err(fail(errors)),
        }
    }
}

/// `POST /v1/models/{name}/backtest`: the backtest options and, optionally,
/// `version`.
#[derive(Debug)]
pub struct ModelBacktestBody {
    pub version: Option<Version>,
    pub options: BacktestOptions,
}

impl FromJson for ModelBacktestBody {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let mut map = object(body)?;
        let mut errors = FieldErrors::new();
        let options = options(&mut map, &mut errors);
        let version = match map.remove("version") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n) if n >= 1 => Some(n),
                _ => {
                    errors.insert(
                        "version".into(),
                        format!("must be a positive integer, got {v}"),
                    );
                    None
                }
            },
        };
        for key in map.keys() {
            errors.insert(
                key.clone(),
                "unknown field: a model's backtest takes horizon, n_windows, step_size, refit, \
                 level, include_forecasts and version (its data is the version's)"
                    .into(),
            );
        }
        match options {
            Some(options) if errors.is_empty() => Ok(Self { version, options }),
            _ => Err(fail(errors)),
        }
    }
}

pub(crate) async fn run(state: &AppState, job: BacktestJob) -> Result<BacktestResult, ApiError> {
    state
        .transport
        .ready()
        .await
        .map_err(|e| transport_error(e, "backtest"))?;
    let timeout = state.config.fit_timeout;
    match tokio::time::timeout(timeout, state.transport.backtest(job)).await {
        Ok(Ok(Ok(result))) => Ok(result),
        Ok(Ok(Err(JobError::Invalid(message)))) => Err(ApiError::field("series", message)),
        Ok(Ok(Err(JobError::Unavailable(reason)))) => Err(ApiError::error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the backtest is not possible now: {reason}; retry later"),
        )),
        Ok(Ok(Err(JobError::Failed(reason)))) => Err(ApiError::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the backtest failed: {reason}"),
        )),
        Ok(Err(e)) => Err(transport_error(e, "backtest")),
        Err(_) => Err(ApiError::error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the backtest did not finish within {}",
                humantime::format_duration(timeout)
            ),
        )),
    }
}

/// `POST /v1/backtest`.
pub async fn backtest_data(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<BacktestBody>,
) -> Result<Response, ApiError> {
    let job = BacktestJob {
        spec: body.fit.spec,
        series: body.fit.series,
        source: None,
        options: body.options,
    };
    Ok(success(run(&state, job).await?))
}

/// `POST /v1/models/{name}/backtest`: on the current version (the newest
/// registered, waited for) or on `version`.
pub async fn backtest_model(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
    JsonBody(body): JsonBody<ModelBacktestBody>,
) -> Result<Response, ApiError> {
    let version = match body.version {
        Some(v) => v,
        None => latest(&state, &model).await?,
    };
    let info = state
        .store
        .wait_settled(&model, version, state.config.wait_timeout)
        .await
        .map_err(|e| match e {
            StoreError::UnknownVersion { .. } => ApiError::field(
                "version",
                format!("model '{model}' has no version {version}"),
            ),
            e => pending_error(e, &model, version),
        })?;
    match info.status {
        VersionStatus::Ready => {}
        VersionStatus::Failed { reason } => return Err(version_failed(&model, version, &reason)),
        VersionStatus::Pending => {
            return Err(pending_error(
                StoreError::WaitTimeout(state.config.wait_timeout),
                &model,
                version,
            ))
        }
    }
    let job = BacktestJob {
        spec: ModelSpec::default(),
        series: vec![],
        source: Some((model.clone(), version)),
        options: body.options,
    };
    let result = run(&state, job).await?;
    let mut data = serde_json::to_value(&result)
        .map_err(|e| ApiError::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Value::Object(map) = &mut data {
        map.insert("model".into(), json!(model.name()));
        map.insert("version".into(), json!(version));
    }
    Ok(success(data))
}

/// The newest registered version of `model`, or a `fail` naming the model.
pub(crate) async fn latest(state: &AppState, model: &ModelName) -> Result<Version, ApiError> {
    state
        .store
        .latest_version(model)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ApiError::field(
                "model",
                format!("model '{model}' does not exist; fit it first with PUT /v1/models/{model}"),
            )
        })
}
