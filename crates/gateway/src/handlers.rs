//! The endpoints, and the consistency rule between fits and forecasts.
//!
//! Fit: validate → register the version as pending → dispatch → answer.
//! Forecast: take the newest registered version → wait until it settles →
//! failed: a JSend error naming it (never an older version) → ready: forecast
//! exactly that version.

use crate::body::{JsonBody, ModelPath};
use crate::dates::Calendars;
use crate::jsend::{success, ApiError};
use crate::validate::{FitRequest, ForecastRequest, SeedFit, SeedForecast, V1Fit, V1Forecast};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use protocol::{FitJob, FitSummary, ForecastJob, ForecastResult, JobError, ModelName, Version};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;
use store::{ModelInfo, Registered, StoreError, VersionInfo, VersionStatus};
use transport::TransportError;

/// Header that makes a fit idempotent: the same key answers with the same version.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;
/// How long `/readyz` waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

// ---- original endpoints, acting on the model named "default" ----

pub async fn seed_fit(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(SeedFit(request)): JsonBody<SeedFit>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let (summary, replayed) = fit(&state, ModelName::default_model(), request, key).await?;
    let first = summary.series.first();
    let data = SeedFitAnswer {
        model: &summary.model,
        version: summary.version,
        method: summary.method,
        chosen: first.map(|s| s.chosen.as_str()),
        fallback: first.and_then(|s| s.fallback.as_deref()),
        n_obs: first.map_or(0, |s| s.n_obs),
        n_missing: first.map_or(0, |s| s.n_missing),
        freq: first.and_then(|s| s.calendar.map(|c| c.freq.to_string())),
    };
    Ok(with_replay_header(success(data), replayed))
}

pub async fn seed_forecast(
    State(state): State<AppState>,
    JsonBody(SeedForecast(horizon)): JsonBody<SeedForecast>,
) -> Result<Response, ApiError> {
    let request = ForecastRequest {
        horizon,
        levels: Vec::new(),
        series_ids: None,
    };
    let model = ModelName::default_model();
    let (result, calendars) = forecast(&state, &model, request, || {
        ApiError::field(
            "model",
            "no model has been fitted yet; POST /fit_model with {\"data\": [...]} first",
        )
    })
    .await?;
    let first = result.series.into_iter().next();
    let ds = first
        .as_ref()
        .and_then(|s| calendars.future(&s.id, horizon.get()));
    Ok(success(SeedForecastAnswer {
        model: result.model,
        version: result.version,
        forecast: first.map(|s| s.forecast.mean).unwrap_or_default(),
        ds,
    }))
}

// ---- named models ----

pub async fn v1_fit(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
    headers: HeaderMap,
    JsonBody(V1Fit(request)): JsonBody<V1Fit>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let (summary, replayed) = fit(&state, model, request, key).await?;
    Ok(with_replay_header(
        success(V1FitAnswer {
            model: summary.model,
            version: summary.version,
            status: "ready",
            method: summary.method,
            series: summary.series,
        }),
        replayed,
    ))
}

pub async fn v1_forecast(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
    JsonBody(V1Forecast(request)): JsonBody<V1Forecast>,
) -> Result<Response, ApiError> {
    let horizon = request.horizon.get();
    let (result, calendars) = forecast(&state, &model, request, || {
        ApiError::field(
            "model",
            format!("model '{model}' does not exist; fit it first with PUT /v1/models/{model}"),
        )
    })
    .await?;
    let series = result
        .series
        .into_iter()
        .map(|s| SeriesAnswer {
            ds: calendars.future(&s.id, horizon),
            id: s.id,
            mean: s.forecast.mean,
            intervals: s.forecast.intervals,
        })
        .collect();
    Ok(success(V1ForecastAnswer {
        model: result.model,
        version: result.version,
        horizon,
        series,
    }))
}

pub async fn list_models(State(state): State<AppState>) -> Result<Response, ApiError> {
    let models = state.store.list().await.map_err(store_error)?;
    let models: Vec<Value> = models
        .iter()
        .map(|m| {
            let latest = m.versions.last();
            json!(ModelListEntry {
                name: &m.name,
                latest_version: latest.map(|v| v.version),
                latest_status: latest.map(|v| status_name(&v.status)),
                n_versions: m.versions.len(),
            })
        })
        .collect();
    Ok(success(json!({ "models": models })))
}

pub async fn describe_model(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
) -> Result<Response, ApiError> {
    match state.store.describe(&model).await.map_err(store_error)? {
        Some(info) => Ok(success(describe(&info))),
        None => Err(ApiError::fail(
            StatusCode::NOT_FOUND,
            "name",
            format!("model '{model}' does not exist"),
        )),
    }
}

pub async fn healthz() -> Response {
    success(json!({ "alive": true }))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {READY_TIMEOUT:?}")),
    };
    let transport = match tokio::time::timeout(READY_TIMEOUT, state.transport.ready()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {READY_TIMEOUT:?}")),
    };
    let show = |r: &Result<(), String>| r.as_ref().err().cloned().unwrap_or_else(|| "ok".into());
    let data = json!({ "store": show(&store), "transport": show(&transport) });
    if store.is_ok() && transport.is_ok() {
        return Ok(success(data));
    }
    let down: Vec<String> = [("store", &store), ("transport", &transport)]
        .into_iter()
        .filter_map(|(what, r)| r.as_ref().err().map(|e| format!("{what}: {e}")))
        .collect();
    Err(ApiError::error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {}", down.join("; ")),
    )
    .with_data(data))
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::fail(
        StatusCode::NOT_FOUND,
        "path",
        format!(
            "no endpoint {method} {}; see the README for the API",
            uri.path()
        ),
    )
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::fail(
        StatusCode::METHOD_NOT_ALLOWED,
        "method",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Answer for a handler that panicked (a bug): a JSend error, never plain text.
pub fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error while handling the request",
    )
    .into_response()
}

// ---- the consistency rule ----

/// Registers a pending version, dispatches its fit and waits for the answer.
/// Returns the summary and whether it is a replay of an earlier request with
/// the same idempotency key.
async fn fit(
    state: &AppState,
    model: ModelName,
    request: FitRequest,
    key: Option<String>,
) -> Result<(FitSummary, bool), ApiError> {
    // Fail fast while jobs cannot be delivered (e.g. the broker is down),
    // before registering a version that could not be fitted.
    state
        .transport
        .ready()
        .await
        .map_err(|e| transport_error(e, "fit"))?;
    let registered = state
        .store
        .register_pending(&model, request.series.len(), key.as_deref())
        .await
        .map_err(store_error)?;
    let version = match registered {
        Registered::Existing(version) => {
            return replay(state, &model, version).await.map(|s| (s, true))
        }
        Registered::New(version) => version,
    };
    tracing::info!(%model, version, n_series = request.series.len(), "fit registered");
    let job = FitJob {
        model: model.clone(),
        version,
        spec: request.spec,
        series: request.series,
    };
    // Its own task: the fit goes on, and its version settles, even if this
    // request is dropped (client gone, answer timed out).
    let transport = state.transport.clone();
    let store = state.store.clone();
    let dispatch = tokio::spawn(async move {
        let (model, version) = (job.model.clone(), job.version);
        let reply = transport.fit(job).await;
        // Make sure a fit that did not succeed does not stay pending; a no-op
        // when the worker already recorded the failure.
        let failure = match &reply {
            Ok(Err(e)) => Some(e.to_string()),
            Err(TransportError::Timeout(_)) => None, // a worker may still finish it
            Err(e) => Some(format!("the fit could not be run: {e}")),
            Ok(Ok(_)) => None,
        };
        if let Some(reason) = failure {
            if let Err(e) = store.fail(&model, version, &reason).await {
                tracing::error!(%model, version, error = %e, "could not record a failed fit");
            }
        }
        reply
    });
    let timeout = state.config.fit_timeout;
    match tokio::time::timeout(timeout, dispatch).await {
        Err(_) => Err(ApiError::error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the fit of version {version} of model '{model}' did not finish within {}; \
                 it goes on in the background, GET /v1/models/{model} shows its status",
                humantime::format_duration(timeout)
            ),
        )
        .with_data(json!({"model": model, "version": version}))),
        Ok(Err(_)) => Err(ApiError::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the fit of version {version} of model '{model}' crashed"),
        )),
        Ok(Ok(Ok(Ok(summary)))) => Ok((summary, false)),
        Ok(Ok(Ok(Err(JobError::Invalid(message))))) => Err(ApiError::field("series", message)),
        Ok(Ok(Ok(Err(JobError::Failed(reason))))) => Err(version_failed(&model, version, &reason)),
        Ok(Ok(Err(e))) => Err(transport_error(e, "fit")),
    }
}

/// The answer of an earlier fit with the same idempotency key.
async fn replay(
    state: &AppState,
    model: &ModelName,
    version: Version,
) -> Result<FitSummary, ApiError> {
    let info = state
        .store
        .wait_settled(model, version, state.config.fit_timeout)
        .await
        .map_err(|e| pending_error(e, model, version))?;
    match info.status {
        VersionStatus::Ready => info.summary.ok_or_else(|| {
            ApiError::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("version {version} of model '{model}' is ready but its summary is missing"),
            )
        }),
        VersionStatus::Failed { reason } => Err(version_failed(model, version, &reason)),
        VersionStatus::Pending => Err(pending_error(
            StoreError::WaitTimeout(state.config.fit_timeout),
            model,
            version,
        )),
    }
}

/// Forecasts the newest version registered before this call, waiting for it.
async fn forecast(
    state: &AppState,
    model: &ModelName,
    request: ForecastRequest,
    unknown_model: impl FnOnce() -> ApiError,
) -> Result<(ForecastResult, Calendars), ApiError> {
    // Fail fast while jobs cannot be delivered, rather than wait for a
    // pending version that cannot settle meanwhile.
    state
        .transport
        .ready()
        .await
        .map_err(|e| transport_error(e, "forecast"))?;
    let Some(version) = state
        .store
        .latest_version(model)
        .await
        .map_err(store_error)?
    else {
        return Err(unknown_model());
    };
    let info = state
        .store
        .wait_settled(model, version, state.config.wait_timeout)
        .await
        .map_err(|e| pending_error(e, model, version))?;
    let calendars = match info.status {
        VersionStatus::Ready => Calendars::of(info.summary.as_ref()),
        VersionStatus::Failed { reason } => return Err(version_failed(model, version, &reason)),
        VersionStatus::Pending => {
            return Err(pending_error(
                StoreError::WaitTimeout(state.config.wait_timeout),
                model,
                version,
            ))
        }
    };
    let job = ForecastJob {
        model: model.clone(),
        version,
        horizon: request.horizon,
        levels: request.levels,
        series_ids: request.series_ids,
    };
    let timeout = state.config.forecast_timeout;
    match tokio::time::timeout(timeout, state.transport.forecast(job)).await {
        Ok(Ok(Ok(result))) => Ok((result, calendars)),
        Ok(Ok(Err(JobError::Invalid(message)))) => Err(ApiError::field("series", message)),
        Ok(Ok(Err(JobError::Failed(reason)))) => Err(ApiError::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("forecasting version {version} of model '{model}' failed: {reason}"),
        )
        .with_data(json!({"model": model, "version": version, "reason": reason}))),
        Ok(Err(e)) => Err(transport_error(e, "forecast")),
        Err(_) => Err(ApiError::error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "no forecast of version {version} of model '{model}' within {}",
                humantime::format_duration(timeout)
            ),
        )),
    }
}

// ---- helpers ----

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let ok = value.to_str().ok().filter(|k| {
        !k.is_empty()
            && k.len() <= MAX_IDEMPOTENCY_KEY_LEN
            && k.bytes().all(|b| b.is_ascii_graphic())
    });
    match ok {
        Some(key) => Ok(Some(key.to_string())),
        None => Err(ApiError::field(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
        )),
    }
}

fn with_replay_header(mut response: Response, replayed: bool) -> Response {
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn version_failed(model: &ModelName, version: Version, reason: &str) -> ApiError {
    ApiError::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("version {version} of model '{model}' failed: {reason}"),
    )
    .with_data(json!({"model": model, "version": version, "reason": reason}))
}

fn pending_error(e: StoreError, model: &ModelName, version: Version) -> ApiError {
    match e {
        StoreError::WaitTimeout(waited) => ApiError::error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "version {version} of model '{model}' is still pending after {}; try again later",
                humantime::format_duration(waited)
            ),
        )
        .with_data(json!({"model": model, "version": version})),
        other => store_error(other),
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::UnknownModel(model) => {
            ApiError::field("model", format!("model '{model}' does not exist"))
        }
        StoreError::Unavailable(_) => {
            tracing::error!(error = %e, "store unavailable");
            ApiError::error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        StoreError::WaitTimeout(_) => ApiError::error(StatusCode::GATEWAY_TIMEOUT, e.to_string()),
        StoreError::UnknownVersion { .. } | StoreError::Internal(_) => {
            tracing::error!(error = %e, "store error");
            ApiError::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

fn transport_error(e: TransportError, what: &str) -> ApiError {
    tracing::error!(error = %e, what, "transport error");
    let status = match e {
        TransportError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        TransportError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        TransportError::DeadLettered(_) | TransportError::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    ApiError::error(status, format!("the {what} could not be completed: {e}"))
}

fn status_name(status: &VersionStatus) -> &'static str {
    match status {
        VersionStatus::Pending => "pending",
        VersionStatus::Ready => "ready",
        VersionStatus::Failed { .. } => "failed",
    }
}

fn describe(info: &ModelInfo) -> ModelAnswer<'_> {
    ModelAnswer {
        name: &info.name,
        latest_version: info.versions.last().map(|v| v.version),
        versions: info.versions.iter().map(describe_version).collect(),
    }
}

fn describe_version(v: &VersionInfo) -> VersionAnswer<'_> {
    VersionAnswer {
        version: v.version,
        status: status_name(&v.status),
        reason: match &v.status {
            VersionStatus::Failed { reason } => Some(reason),
            _ => None,
        },
        created_at: humantime::format_rfc3339_millis(v.created_at).to_string(),
        n_series: v.n_series,
        method: v.summary.as_ref().map(|s| s.method),
        n_fallbacks: v
            .summary
            .as_ref()
            .map(|s| s.series.iter().filter(|s| s.fallback.is_some()).count()),
    }
}

// ---- answers (structs, so fields keep a readable order) ----

#[derive(Serialize)]
struct SeedFitAnswer<'a> {
    model: &'a ModelName,
    version: Version,
    method: engine::Method,
    chosen: Option<&'a str>,
    fallback: Option<&'a str>,
    n_obs: usize,
    n_missing: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    freq: Option<String>,
}

#[derive(Serialize)]
struct SeedForecastAnswer {
    model: ModelName,
    version: Version,
    forecast: Vec<f64>,
    /// The forecast steps' timestamps, when the series had timestamps.
    #[serde(skip_serializing_if = "Option::is_none")]
    ds: Option<Vec<String>>,
}

#[derive(Serialize)]
struct V1FitAnswer {
    model: ModelName,
    version: Version,
    status: &'static str,
    method: engine::Method,
    series: Vec<protocol::SeriesFit>,
}

#[derive(Serialize)]
struct V1ForecastAnswer {
    model: ModelName,
    version: Version,
    horizon: usize,
    series: Vec<SeriesAnswer>,
}

#[derive(Serialize)]
struct SeriesAnswer {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ds: Option<Vec<String>>,
    mean: Vec<f64>,
    intervals: Vec<engine::Interval>,
}

#[derive(Serialize)]
struct ModelListEntry<'a> {
    name: &'a ModelName,
    latest_version: Option<Version>,
    latest_status: Option<&'static str>,
    n_versions: usize,
}

#[derive(Serialize)]
struct ModelAnswer<'a> {
    name: &'a ModelName,
    latest_version: Option<Version>,
    versions: Vec<VersionAnswer<'a>>,
}

#[derive(Serialize)]
struct VersionAnswer<'a> {
    version: Version,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    created_at: String,
    n_series: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<engine::Method>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n_fallbacks: Option<usize>,
}
