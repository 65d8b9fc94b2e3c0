//! The endpoints, and the consistency rule between fits and forecasts.
//!
//! Fit: validate → check that it can travel → register the version as
//! pending and dispatch it, in one task a client hanging up cannot cancel →
//! answer.
//! Forecast: take the newest registered version → wait until it settles →
//! failed: a JSend error naming it (never an older version) → ready: forecast
//! exactly that version.

use crate::admission::Slot;
use crate::auth::Caller;
use crate::body::{JsonBody, KeyedBody, ModelPath};
use crate::dates::Calendars;
use crate::jsend::{success, ApiError};
use crate::spooled::SpooledFit;
use crate::validate::{FitRequest, ForecastRequest, SeedFit, SeedForecast, V1Fit, V1Forecast};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use protocol::{FitJob, FitSummary, ForecastJob, ForecastResult, JobError, ModelName, Version};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store::{ModelInfo, ModelStore, Page, Registered, StoreError, VersionInfo, VersionStatus};
use tokio::sync::oneshot;
use tokio::time::Instant;
use transport::{FitShards, Transport, TransportError};

/// Header that makes a fit idempotent: the same key answers with the same version.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;
/// How long `/readyz` waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

// ---- original endpoints, acting on the model named "default" ----

/// Fits the model named "default" on one series; answers with its new version.
#[utoipa::path(post, path = "/fit_model", tag = "original",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the fit idempotent: a key used before for the same model answers with the version it created (header `Idempotent-Replayed: true`). 1 to 128 visible ASCII characters."), ("Prefer" = Option<String>, Header, description = "`respond-async` (RFC 7240): answer `202 Accepted` at once and run the fit as a job.")),
    request_body = crate::openapi::SeedFitBody,
    responses((status = 200, description = "The fitted version.", body = crate::openapi::Success<SeedFitAnswer>), (status = 202, description = "Accepted as a job (`Prefer: respond-async`, or a fit larger than the `--async-points` threshold, 1000000 values by default): the job with the version it registered; follow `Location`.", body = crate::openapi::Success<crate::jobs::JobAnswer<'static>>, headers(("Location" = String, description = "`/v1/jobs/{id}`"), ("Preference-Applied" = Option<String>, description = "`respond-async` when the client asked for it")))))]
pub async fn seed_fit(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    headers: HeaderMap,
    body: KeyedBody<SeedFit>,
) -> Result<Response, ApiError> {
    let key = keyed(&headers, body.digest)?;
    let SeedFit(request) = body.body;
    let model = ModelName::default_model_in(&tenant);
    let input = FitInput::Request(request);
    if let Some(prefer) = crate::jobs::wants_async(&state.config, &headers, input.points()) {
        return crate::jobs::fit_async(&state, model, input, key, prefer).await;
    }
    let answer = fit(&state, model, input, key).await;
    Ok(answer.respond(|summary| {
        let first = summary.series.first();
        success(SeedFitAnswer {
            model: &summary.model,
            version: summary.version,
            method: summary.method,
            chosen: first.map(|s| s.chosen.as_str()),
            fallback: first.and_then(|s| s.fallback.as_deref()),
            n_obs: first.map_or(0, |s| s.n_obs),
            n_missing: first.map_or(0, |s| s.n_missing),
            freq: first.and_then(|s| s.calendar.map(|c| c.freq.to_string())),
            index: first.and_then(|s| s.index),
        })
    }))
}

/// Forecasts the newest version of the model named "default".
#[utoipa::path(post, path = "/forecast", tag = "original",
    request_body = crate::openapi::SeedForecastBody,
    responses((status = 200, description = "The forecast.", body = crate::openapi::Success<SeedForecastAnswer>)))]
pub async fn seed_forecast(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    JsonBody(SeedForecast(horizon)): JsonBody<SeedForecast>,
) -> Result<Response, ApiError> {
    let request = ForecastRequest {
        horizon,
        levels: Vec::new(),
        series_ids: None,
        version: None,
        one_series: true,
    };
    let model = ModelName::default_model_in(&tenant);
    let (result, calendars) = forecast(&state, &model, request, || {
        ApiError::field(
            "model",
            "no model has been fitted yet; POST /fit_model with {\"data\": [...]} first",
        )
    })
    .await
    .map_err(|e| e.renamed("horizon", "num_steps"))?;
    metrics::histogram!(crate::metrics::FORECAST_BATCH).record(result.series.len() as f64);
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

/// Fits a new version of a named model on one or more series.
#[utoipa::path(put, path = "/v1/models/{name}", tag = "models",
    params(("name" = String, Path, description = "The model: 1 to 64 characters of `A-Z a-z 0-9 _ - .`", pattern = "^[A-Za-z0-9_.-]{1,64}$"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the fit idempotent: a key used before for the same model answers with the version it created (header `Idempotent-Replayed: true`). 1 to 128 visible ASCII characters."), ("Prefer" = Option<String>, Header, description = "`respond-async` (RFC 7240): answer `202 Accepted` at once and run the fit as a job.")),
    request_body = crate::openapi::V1FitBody,
    responses((status = 200, description = "The fitted version, one entry per series.", body = crate::openapi::Success<V1FitAnswer>), (status = 202, description = "Accepted as a job (`Prefer: respond-async`, or a fit larger than the `--async-points` threshold, 1000000 values by default): the job with the version it registered; follow `Location`.", body = crate::openapi::Success<crate::jobs::JobAnswer<'static>>, headers(("Location" = String, description = "`/v1/jobs/{id}`"), ("Preference-Applied" = Option<String>, description = "`respond-async` when the client asked for it")))))]
pub async fn v1_fit(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
    headers: HeaderMap,
    body: KeyedBody<V1Fit>,
) -> Result<Response, ApiError> {
    let key = keyed(&headers, body.digest)?;
    let V1Fit(request) = body.body;
    fit_or_job(&state, model, &headers, FitInput::Request(request), key).await
}

/// A fit of `PUT /v1/models/{name}`, run now or as a job (see
/// [`crate::jobs::wants_async`]).
pub(crate) async fn fit_or_job(
    state: &AppState,
    model: ModelName,
    headers: &HeaderMap,
    input: FitInput,
    key: Option<Keyed>,
) -> Result<Response, ApiError> {
    if let Some(prefer) = crate::jobs::wants_async(&state.config, headers, input.points()) {
        return crate::jobs::fit_async(state, model, input, key, prefer).await;
    }
    let answer = fit(state, model, input, key).await;
    Ok(answer.respond(|summary| {
        success(V1FitAnswer {
            model: summary.model,
            version: summary.version,
            status: "ready",
            method: summary.method,
            series: summary.series,
        })
    }))
}

/// Forecasts the newest version of a named model, waiting while it is pending.
#[utoipa::path(post, path = "/v1/models/{name}/forecast", tag = "models",
    params(("name" = String, Path, description = "The model: 1 to 64 characters of `A-Z a-z 0-9 _ - .`", pattern = "^[A-Za-z0-9_.-]{1,64}$")),
    request_body = crate::openapi::V1ForecastBody,
    responses((status = 200, description = "The forecast of each series asked for.", body = crate::openapi::Success<V1ForecastAnswer>)))]
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
    metrics::histogram!(crate::metrics::FORECAST_BATCH).record(result.series.len() as f64);
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

/// Items per page of a listing without `limit`.
const DEFAULT_PAGE: usize = 100;

/// `?limit=&after=` of a listing: `limit` 1 to [`store::MAX_PAGE`] (default
/// [`DEFAULT_PAGE`]), `after` the last item of the previous page.
fn page<K>(
    query: &HashMap<String, String>,
    after: impl FnOnce(&str) -> Result<K, String>,
) -> Result<Page<K>, ApiError> {
    let limit = match query.get("limit") {
        None => DEFAULT_PAGE,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=store::MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::field(
                    "limit",
                    format!("must be an integer from 1 to {}", store::MAX_PAGE),
                ))
            }
        },
    };
    let after = match query.get("after") {
        None => None,
        Some(text) => Some(after(text).map_err(|e| ApiError::field("after", e))?),
    };
    Ok(Page::new(limit, after))
}

/// Cuts a listing fetched [`Page::with_lookahead`] back to `limit` items;
/// the last item kept when more follow (the next page starts after it).
fn more_follow<T>(items: &mut Vec<T>, limit: usize) -> Option<&T> {
    if items.len() > limit {
        items.truncate(limit);
        items.last()
    } else {
        None
    }
}

/// Lists the models by name, a page at a time.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    params(("limit" = Option<usize>, Query, description = "Items per page, 1 to 1000 (default 100).", minimum = 1, maximum = 1000), ("after" = Option<String>, Query, description = "The last model name of the previous page (its `next_after`).")),
    responses((status = 200, description = "A page of models.", body = crate::openapi::Success<crate::openapi::ModelList>)))]
pub async fn list_models(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let page = page(&query, |t| {
        ModelName::parse_in(&tenant, t).map_err(|e| e.to_string())
    })?;
    let limit = page.limit();
    let mut models = state
        .store
        .list_models(&tenant, page.with_lookahead())
        .await
        .map_err(store_error)?;
    let next = more_follow(&mut models, limit).map(|m| m.name.clone());
    let models: Vec<Value> = models
        .iter()
        .map(|m| {
            json!(ModelListEntry {
                name: &m.name,
                latest_version: Some(m.latest_version),
                latest_status: Some(status_name(&m.latest_status)),
                n_versions: m.n_versions,
            })
        })
        .collect();
    let mut data = json!({ "models": models });
    if let Some(next) = next {
        data["next_after"] = json!(next.name());
    }
    Ok(success(data))
}

/// A model and its versions by number, a page at a time.
#[utoipa::path(get, path = "/v1/models/{name}", tag = "models",
    params(("name" = String, Path, description = "The model: 1 to 64 characters of `A-Z a-z 0-9 _ - .`", pattern = "^[A-Za-z0-9_.-]{1,64}$"), ("limit" = Option<usize>, Query, description = "Items per page, 1 to 1000 (default 100).", minimum = 1, maximum = 1000), ("after" = Option<i64>, Query, description = "The last version of the previous page (its `next_after`).", minimum = 0)),
    responses((status = 200, description = "The model and a page of its versions.", body = crate::openapi::Success<crate::openapi::ModelPage>)))]
pub async fn describe_model(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let page = page(&query, |t| match t.parse::<Version>() {
        Ok(v) if v >= 0 => Ok(v),
        _ => Err("must be a version number".to_string()),
    })?;
    let limit = page.limit();
    match state
        .store
        .versions(&model, page.with_lookahead())
        .await
        .map_err(store_error)?
    {
        Some(mut info) => {
            let next = more_follow(&mut info.versions, limit).map(|v| v.version);
            let mut data = json!(describe(&info));
            if let Some(next) = next {
                data["next_after"] = json!(next);
            }
            Ok(success(data))
        }
        None => Err(ApiError::fail(
            StatusCode::NOT_FOUND,
            "name",
            format!("model '{model}' does not exist"),
        )),
    }
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive.", body = crate::openapi::Success<crate::openapi::Alive>)))]
pub async fn healthz() -> Response {
    success(json!({ "alive": true }))
}

/// Readiness: the store and the transport answer (a 503 error says which does not).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready.", body = crate::openapi::Success<crate::openapi::Readiness>)))]
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
    // Distributed: the workers listening on each queue; none is not ready.
    let consumers = match &transport {
        Ok(()) => {
            match tokio::time::timeout(READY_TIMEOUT, state.transport.consumers(true)).await {
                Ok(Ok(counts)) => Ok(counts),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {READY_TIMEOUT:?}")),
            }
        }
        Err(_) => Ok(None),
    };
    let workers = match &consumers {
        Ok(Some(c)) => no_workers(c).map_or(Ok(()), Err),
        Ok(None) => Ok(()),
        Err(e) => Err(format!("cannot count them: {e}")),
    };
    let show = |r: &Result<(), String>| r.as_ref().err().cloned().unwrap_or_else(|| "ok".into());
    let mut data = json!({ "store": show(&store), "transport": show(&transport) });
    if let Ok(Some(c)) = &consumers {
        data["consumers"] = json!({ "fit": c.fit, "forecast": c.forecast });
        data["workers"] = json!(show(&workers));
    }
    if store.is_ok() && transport.is_ok() && workers.is_ok() {
        return Ok(success(data));
    }
    let down: Vec<String> = [
        ("store", &store),
        ("transport", &transport),
        ("workers", &workers),
    ]
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

/// The outcome of a fit request, and whether it answers for an earlier
/// request with the same idempotency key (then it carries
/// `Idempotent-Replayed: true`, failures included).
pub(crate) struct FitAnswer {
    summary: Result<FitSummary, ApiError>,
    replayed: bool,
}

impl FitAnswer {
    /// The fit's summary, or the answer that tells why there is none
    /// (for callers that answer in another shape, e.g. compat/nixtla.rs).
    pub(crate) fn into_result(self) -> Result<FitSummary, ApiError> {
        self.summary
    }

    /// A failure whose cause is that `base`, the version this fit builds
    /// on, was deleted meanwhile becomes that version's 404.
    pub(crate) async fn unless_base_deleted(
        mut self,
        state: &AppState,
        model: &ModelName,
        base: Version,
    ) -> Self {
        if let Err(failed) = self.summary {
            self.summary = Err(unless_deleted(state, model, base, failed).await);
        }
        self
    }

    pub(crate) fn respond(self, ok: impl FnOnce(FitSummary) -> Response) -> Response {
        let response = match self.summary {
            Ok(summary) => ok(summary),
            Err(e) => e.into_response(),
        };
        with_replay_header(response, self.replayed)
    }
}

/// Everything that ends a fit request without a summary; [`FitError::answer`]
/// decides how each is told to the client.
#[derive(Debug)]
pub(crate) enum FitError {
    /// The fit could not be sent, was refused, or its answer did not come back.
    Transport(TransportError),
    /// Registering or reading the version failed.
    Store(StoreError),
    /// The worker refused the series: the client's fault.
    Invalid(String),
    /// The version failed.
    Failed { version: Version, reason: String },
    /// The fit ran but the store could not record it for a while; the
    /// version stays pending, the client may retry.
    Unavailable { version: Version, reason: String },
    /// No outcome within the fit timeout; the fit goes on.
    TimedOut,
    /// The task that registers and dispatches the fit panicked (a bug).
    Crashed,
    /// A ready version without its summary (a bug).
    NoSummary(Version),
    /// Refused before anything was registered (e.g. no worker listens).
    Refused(ApiError),
}

impl FitError {
    /// The answer, given the version registered for the request, if any.
    pub(crate) fn answer(
        self,
        model: &ModelName,
        version: Option<Version>,
        timeout: Duration,
    ) -> ApiError {
        match self {
            FitError::Transport(TransportError::TooLarge { bytes, limit }) => ApiError::fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body",
                format!(
                    "this fit would travel to the workers as a {bytes}-byte message, over the \
                     broker's limit of {limit} bytes; send fewer or shorter series"
                ),
            ),
            FitError::Transport(e) => transport_error(e, "fit"),
            FitError::Store(e) => match version {
                Some(version) => pending_error(e, model, version),
                None => store_error(e),
            },
            FitError::Invalid(message) => ApiError::field("series", message),
            FitError::Failed { version, reason } => version_failed(model, version, &reason),
            FitError::Unavailable { version, reason } => ApiError::error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the fit of version {version} of model '{model}' could not be recorded yet: \
                     {reason}; retry later"
                ),
            )
            .with_data(json!({"model": model.name(), "version": version, "reason": reason})),
            FitError::TimedOut => {
                let waited = humantime::format_duration(timeout);
                match version {
                    Some(version) => ApiError::error(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "the fit of version {version} of model '{model}' did not finish within \
                             {waited}; it goes on in the background, GET /v1/models/{model} shows \
                             its status"
                        ),
                    )
                    .with_data(json!({"model": model.name(), "version": version})),
                    None => ApiError::error(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "the fit of model '{model}' could not be registered within {waited}"
                        ),
                    ),
                }
            }
            FitError::Crashed => ApiError::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the fit of model '{model}' crashed"),
            ),
            FitError::Refused(e) => e,
            FitError::NoSummary(version) => ApiError::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("version {version} of model '{model}' is ready but its summary is missing"),
            ),
        }
    }
}

/// What the task of a fit ends with.
enum Registration {
    /// The fit was dispatched and this is its answer.
    Fitted(FitSummary),
    /// An earlier request with the same idempotency key registered this
    /// version and sent its fit: its outcome is read from the store.
    Earlier(Version),
    /// A fit in shards, settled in the store: its answer is read from there.
    Stored(Version),
}

/// What a fit is made of: a validated request in memory, or a table fit
/// checked shard by shard into a spool (see [`crate::spooled`]).
pub(crate) enum FitInput {
    Request(FitRequest),
    Spooled(SpooledFit),
}

impl FitInput {
    /// Values in all.
    pub(crate) fn points(&self) -> u64 {
        match self {
            FitInput::Request(r) => r.series.iter().map(|s| s.values.len() as u64).sum(),
            FitInput::Spooled(s) => s.n_points(),
        }
    }
}

/// Registers a pending version, dispatches its fit and waits for the answer.
async fn fit(state: &AppState, model: ModelName, input: FitInput, key: Option<Keyed>) -> FitAnswer {
    fit_input(state, model, input, key, None).await
}

/// The version new observations extend (see [`FitJob::base`]) and how many
/// series it holds: the new version holds as many, whatever the request
/// names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Base {
    pub(crate) version: Version,
    pub(crate) n_series: usize,
}

/// [`fit`], or with `base` new observations filtered forward from that
/// version.
pub(crate) async fn fit_from(
    state: &AppState,
    model: ModelName,
    request: FitRequest,
    key: Option<Keyed>,
    base: Option<Base>,
) -> FitAnswer {
    fit_input(state, model, FitInput::Request(request), key, base).await
}

async fn fit_input(
    state: &AppState,
    model: ModelName,
    input: FitInput,
    key: Option<Keyed>,
    base: Option<Base>,
) -> FitAnswer {
    // Taken before any work, held by the fit until it settles (even after
    // its client is gone), so fits queued at once stay bounded.
    let slot = match state.admission.fit() {
        Ok(slot) => slot,
        Err(e) => {
            return FitAnswer {
                summary: Err(e),
                replayed: false,
            }
        }
    };
    let _in_flight = crate::metrics::InFlight::new(crate::metrics::FITS_IN_FLIGHT);
    let timeout = state.config.fit_timeout;
    let (registered_tx, mut registered_rx) = oneshot::channel();
    let summary = match prepare_fit(state, &model, input, base).await {
        Ok(job) => fit_within(state, &model, job, key, slot, registered_tx, timeout).await,
        Err(e) => Err(e),
    };
    let registered = registered_rx.try_recv().ok();
    if let Some((_, false)) = registered {
        crate::life::retain(state, &model);
    }
    let version = registered.map(|r| r.0);
    let summary = match summary {
        Ok(summary) => Ok(summary),
        Err(e) => {
            let failed = e.answer(&model, version, timeout);
            // A DELETE of the model while it was fitting is no failure of ours.
            Err(match version {
                Some(version) => unless_deleted(state, &model, version, failed).await,
                None => failed,
            })
        }
    };
    FitAnswer {
        summary,
        replayed: registered.is_some_and(|r| r.1),
    }
}

async fn fit_within(
    state: &AppState,
    model: &ModelName,
    job: PreparedFit,
    key: Option<Keyed>,
    slot: Slot,
    registered: oneshot::Sender<(Version, bool)>,
    timeout: Duration,
) -> Result<FitSummary, FitError> {
    let deadline = Instant::now() + timeout;
    // Registration and dispatch in one task of their own, which a client
    // hanging up (hyper then drops this future) cannot split: a registered
    // version is always dispatched, and settles.
    let task = tokio::spawn(register_and_dispatch(
        state.clone(),
        job,
        key,
        slot,
        registered,
    ));
    let outcome = match tokio::time::timeout_at(deadline, task).await {
        Ok(joined) => joined.unwrap_or(Err(FitError::Crashed))?,
        Err(_) => return Err(FitError::TimedOut),
    };
    match outcome {
        Registration::Fitted(summary) => Ok(summary),
        Registration::Earlier(version) | Registration::Stored(version) => {
            replay(state, model, version, deadline).await
        }
    }
}

/// A fit ready to be registered and sent: its shards (see
/// [`protocol::shard`]; one, the whole fit, unless it is large), each
/// checked to travel, with version 0 until registered.
pub(crate) struct PreparedFit {
    model: ModelName,
    version: Version,
    shards: Shards,
    n_series: usize,
}

/// The shards of a prepared fit: in memory, or spooled (a large table).
enum Shards {
    Jobs(Vec<FitJob>),
    Spooled(SpooledFit),
}

impl PreparedFit {
    pub(crate) fn n_series(&self) -> usize {
        self.n_series
    }

    /// The version new observations extend, if they are that (their job
    /// says so; they are never sharded or spooled).
    pub(crate) fn base(&self) -> Option<Version> {
        match &self.shards {
            Shards::Jobs(jobs) => jobs.first().and_then(|j| j.base),
            Shards::Spooled(_) => None,
        }
    }

    pub(crate) fn set_version(&mut self, version: Version) {
        self.version = version;
        if let Shards::Jobs(jobs) = &mut self.shards {
            for shard in jobs {
                shard.version = version;
            }
        }
    }
}

/// The fit of a request, once the transport is up and can carry it. With
/// `base`, the series are new observations filtered forward from that
/// version (never sharded). A spooled fit was checked to travel already.
pub(crate) async fn prepare_fit(
    state: &AppState,
    model: &ModelName,
    input: FitInput,
    base: Option<Base>,
) -> Result<PreparedFit, FitError> {
    // Fail fast while jobs cannot be delivered (e.g. the broker is down, or
    // no worker listens), before registering a version that could not be
    // fitted.
    state.transport.ready().await.map_err(FitError::Transport)?;
    workers_listening(state, |c| c.fit, "fit")
        .await
        .map_err(FitError::Refused)?;
    let request = match input {
        FitInput::Request(request) => request,
        FitInput::Spooled(spooled) => {
            return Ok(PreparedFit {
                model: model.clone(),
                version: 0,
                n_series: spooled.n_series(),
                shards: Shards::Spooled(spooled),
            })
        }
    };
    let job = FitJob {
        shard: None,
        base: base.map(|b| b.version),
        model: model.clone(),
        version: 0, // set once registered
        spec: request.spec,
        series: request.series,
    };
    // Refused before registering: a fit that cannot travel must not leave a
    // failed version behind.
    let transport = state.transport.clone();
    let sizes = state.config.shard_sizes;
    let (prepared, fits) = tokio::task::spawn_blocking(move || {
        let n_series = base.map_or(job.series.len(), |b| b.n_series);
        let model = job.model.clone();
        let shards = protocol::shard::split(job, &sizes);
        let fits = shards.iter().try_for_each(|s| transport.check_fit(s));
        let prepared = PreparedFit {
            model,
            version: 0,
            shards: Shards::Jobs(shards),
            n_series,
        };
        (prepared, fits)
    })
    .await
    .map_err(|_| FitError::Crashed)?;
    fits.map_err(FitError::Transport)?;
    Ok(prepared)
}

/// The detached part of a fit: register, then send the fit and record a
/// failure. Tells `registered` the version (and whether an earlier request
/// registered it) as soon as it is known.
async fn register_and_dispatch(
    state: AppState,
    mut job: PreparedFit,
    key: Option<Keyed>,
    _slot: Slot,
    registered: oneshot::Sender<(Version, bool)>,
) -> Result<Registration, FitError> {
    let model = job.model.clone();
    let registration = register(&state, &model, job.n_series(), key.as_ref(), job.base()).await?;
    let (store, transport) = (state.store.clone(), state.transport.clone());
    let version = registration.version();
    let earlier = matches!(registration, Registered::Existing(_));
    let _ = registered.send((version, earlier));
    if earlier {
        // Sent again only if it may never have been sent (its gateway died
        // right after registering it); otherwise it settles by itself.
        if !store
            .is_undispatched(&model, version)
            .await
            .map_err(FitError::Store)?
        {
            return Ok(Registration::Earlier(version));
        }
        tracing::warn!(%model, version, "sending again the fit of a registration whose fit may never have been sent");
    } else {
        tracing::info!(%model, version, n_series = job.n_series(), "fit registered");
    }
    job.set_version(version);
    dispatch(store, transport, job).await.map(|d| match d {
        Dispatched::Answer(summary) => Registration::Fitted(summary),
        Dispatched::Ready(version) => Registration::Stored(version),
    })
}

/// What a dispatched fit ended with.
pub(crate) enum Dispatched {
    /// The worker's answer (a fit in one piece).
    Answer(FitSummary),
    /// A fit in shards, ready in the store. Its summary (every shard's
    /// series: a million entries for a million series) is read from there
    /// only by a caller that answers with it.
    Ready(Version),
}

/// Sends the fit of a registered version and waits for its answer, making
/// sure a fit that did not succeed does not stay pending.
pub(crate) async fn dispatch(
    store: Arc<dyn ModelStore>,
    transport: Arc<dyn Transport>,
    job: PreparedFit,
) -> Result<Dispatched, FitError> {
    let PreparedFit {
        model,
        version,
        shards,
        ..
    } = job;
    let mut jobs = match shards {
        Shards::Spooled(spooled) => {
            let shards = spooled.shards(model, version);
            return dispatch_shards(store, transport, shards)
                .await
                .map(Dispatched::Ready);
        }
        Shards::Jobs(jobs) if jobs.len() > 1 => {
            let shards = FitShards::from_jobs(model, version, jobs);
            return dispatch_shards(store, transport, shards)
                .await
                .map(Dispatched::Ready);
        }
        Shards::Jobs(jobs) => jobs,
    };
    let Some(job) = jobs.pop() else {
        return Err(FitError::Crashed);
    };
    let (model, version) = (job.model.clone(), job.version);
    let reply = transport.fit(job).await;
    // Make sure a fit that did not succeed does not stay pending; a no-op
    // when the worker already recorded the failure.
    let failure = match &reply {
        // No verdict: the store was down; the version stays pending.
        Ok(Err(JobError::Unavailable(_))) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(TransportError::Timeout(_)) => None, // a worker may still finish it
        Err(e) => Some(format!("the fit could not be run: {e}")),
        Ok(Ok(_)) => None,
    };
    if let Some(reason) = failure {
        store::record_failure(store.as_ref(), &model, version, &reason).await;
    }
    match reply {
        Ok(Ok(summary)) => Ok(Dispatched::Answer(summary)),
        Ok(Err(JobError::Invalid(message))) => Err(FitError::Invalid(message)),
        Ok(Err(JobError::Failed(reason))) => Err(FitError::Failed { version, reason }),
        Ok(Err(JobError::Unavailable(reason))) => Err(FitError::Unavailable { version, reason }),
        Err(e) => Err(FitError::Transport(e)),
    }
}

/// How long a sharded fit whose every shard answered waits for its version
/// to read as settled (the last shard settles it before it answers).
const SHARDS_SETTLE: Duration = Duration::from_secs(10);
/// How long one watch of a sharded fit's version for a failure lasts
/// (renewed until the fit ends).
const SHARDS_WATCH: Duration = Duration::from_secs(600);

/// [`dispatch`] of a fit in shards: all are sent at once, any worker takes
/// any of them; the first shard (in shard order) that failed fails the
/// version, naming itself. The answer is the version's status as the store
/// settled it (never its merged summary of every series), so it never
/// contradicts the store.
async fn dispatch_shards(
    store: Arc<dyn ModelStore>,
    transport: Arc<dyn Transport>,
    shards: FitShards,
) -> Result<Version, FitError> {
    let (model, version) = (shards.model().clone(), shards.version());
    let count = u32::try_from(shards.count()).unwrap_or(u32::MAX);
    let labels: Vec<String> = (0..count)
        .map(|index| protocol::shard::Shard { index, count }.to_string())
        .collect();
    tracing::info!(%model, version, shards = count, "fit sent in shards");
    // A shard that failed (in a worker, or dead-lettered) fails the version
    // in the store at once: the answer need not wait for the other shards.
    let failed = async {
        loop {
            match store.wait_status(&model, version, SHARDS_WATCH).await {
                Ok(info) => match info.status {
                    VersionStatus::Failed { reason } => return reason,
                    // Ready: the last shard's answer is on its way.
                    _ => std::future::pending::<()>().await,
                },
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    };
    let replies = tokio::select! {
        replies = transport.fit_shards(shards) => replies,
        reason = failed => return Err(FitError::Failed { version, reason }),
    };
    let mut failure = None;
    let mut no_verdict = None;
    for (label, reply) in labels.iter().zip(replies) {
        // A worker's reason names its shard already.
        let named = |reason: String| {
            if reason.starts_with(label.as_str()) {
                reason
            } else {
                format!("{label}: {reason}")
            }
        };
        match reply {
            Ok(Ok(_)) => {}
            // No verdict: the store was down, or a worker may still finish it.
            Ok(Err(JobError::Unavailable(reason))) => {
                no_verdict.get_or_insert(FitError::Unavailable {
                    version,
                    reason: named(reason),
                });
            }
            Err(e @ TransportError::Timeout(_)) => {
                no_verdict.get_or_insert(FitError::Transport(e));
            }
            Ok(Err(e)) => {
                failure.get_or_insert_with(|| named(e.to_string()));
            }
            Err(e) => {
                failure.get_or_insert_with(|| named(format!("the fit could not be run: {e}")));
            }
        }
    }
    if let Some(reason) = &failure {
        store::record_failure(store.as_ref(), &model, version, reason).await;
    } else if let Some(e) = no_verdict {
        return Err(e);
    }
    // First wins: the store's verdict (e.g. a dead-letter's reason) is the answer.
    let wait = if failure.is_some() {
        Duration::ZERO
    } else {
        SHARDS_SETTLE
    };
    let info = store
        .wait_status(&model, version, wait)
        .await
        .map_err(FitError::Store)?;
    match info.status {
        VersionStatus::Ready => Ok(version),
        VersionStatus::Failed { reason } => Err(FitError::Failed { version, reason }),
        VersionStatus::Pending => Err(FitError::Store(StoreError::WaitTimeout(wait))),
    }
}

/// The outcome of an earlier fit with the same idempotency key.
async fn replay(
    state: &AppState,
    model: &ModelName,
    version: Version,
    deadline: Instant,
) -> Result<FitSummary, FitError> {
    let waited = deadline.saturating_duration_since(Instant::now());
    let info = state
        .store
        .wait_settled(model, version, waited)
        .await
        .map_err(FitError::Store)?;
    match info.status {
        VersionStatus::Ready => info.summary.ok_or(FitError::NoSummary(version)),
        VersionStatus::Failed { reason } => Err(FitError::Failed { version, reason }),
        VersionStatus::Pending => Err(FitError::Store(StoreError::WaitTimeout(waited))),
    }
}

/// The version a forecast reads, once settled and ready: the one pinned by
/// `pinned`, else the newest. Its status and counts only, never its
/// summary: what it costs does not grow with the version's series.
pub(crate) async fn settled_version(
    state: &AppState,
    model: &ModelName,
    pinned: Option<Version>,
    unknown_model: impl FnOnce() -> ApiError,
) -> Result<VersionInfo, ApiError> {
    let Some(latest) = state
        .store
        .latest_version(model)
        .await
        .map_err(store_error)?
    else {
        return Err(unknown_model());
    };
    let version = pinned.unwrap_or(latest);
    let info = state
        .store
        .wait_status(model, version, state.config.wait_timeout)
        .await
        .map_err(|e| match e {
            StoreError::UnknownVersion { .. } => crate::life::no_such_version(model, version),
            e => pending_error(e, model, version),
        })?;
    match &info.status {
        VersionStatus::Ready => Ok(info),
        VersionStatus::Failed { reason } if pinned.is_some() => Err(crate::life::pinned_failed(
            model, version, reason, "forecast",
        )),
        VersionStatus::Failed { reason } => Err(version_failed(model, version, reason)),
        VersionStatus::Pending => Err(pending_error(
            StoreError::WaitTimeout(state.config.wait_timeout),
            model,
            version,
        )),
    }
}

/// Forecasts the newest version registered before this call, waiting for it.
pub(crate) async fn forecast(
    state: &AppState,
    model: &ModelName,
    request: ForecastRequest,
    unknown_model: impl FnOnce() -> ApiError,
) -> Result<(ForecastResult, Calendars), ApiError> {
    let _slot = state.admission.forecast()?;
    let _in_flight = crate::metrics::InFlight::new(crate::metrics::FORECASTS_IN_FLIGHT);
    // Fail fast while jobs cannot be delivered, rather than wait for a
    // pending version that cannot settle meanwhile.
    state
        .transport
        .ready()
        .await
        .map_err(|e| transport_error(e, "forecast"))?;
    let info = settled_version(state, model, request.version, unknown_model).await?;
    let version = info.version;
    // The answer's size is known now: refuse it before any worker works.
    let n_series = match &request.series_ids {
        Some(ids) => ids.len(),
        None => info.n_series,
    };
    if request.one_series && n_series > 1 {
        // One list of numbers cannot say which series it is.
        return Err(ApiError::field(
            "model",
            format!(
                "version {version} of model '{model}' has {n_series} series, and /forecast \
                 answers one; use POST /v1/models/{model}/forecast"
            ),
        ));
    }
    state
        .admission
        .forecast_size(request.horizon.get(), n_series, request.levels.len())?;
    workers_listening(state, |c| c.forecast, "forecast").await?;
    let job = ForecastJob {
        model: model.clone(),
        version,
        horizon: request.horizon,
        levels: request.levels,
        series_ids: request.series_ids.clone(),
        shard: None,
    };
    let timeout = state.config.forecast_timeout;
    // The calendars of the series' shards are read (or found cached) while
    // the worker forecasts.
    let (answer, calendars) = tokio::join!(
        tokio::time::timeout(timeout, state.transport.forecast(job)),
        state.calendars.calendars(
            state.store.as_ref(),
            model,
            &info,
            request.series_ids.as_deref()
        ),
    );
    match answer {
        Ok(Ok(Ok(result))) => Ok((result, calendars.map_err(store_error)?)),
        Ok(Ok(Err(JobError::Invalid(message)))) => Err(ApiError::field("series", message)),
        Ok(Ok(Err(JobError::Unavailable(reason)))) => Err(ApiError::error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("forecasting version {version} of model '{model}' is not possible now: {reason}; retry later"),
        )
        .with_data(json!({"model": model.name(), "version": version, "reason": reason}))),
        Ok(Ok(Err(JobError::Failed(reason)))) => Err(unless_deleted(
            state,
            model,
            version,
            ApiError::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("forecasting version {version} of model '{model}' failed: {reason}"),
            )
            .with_data(json!({"model": model.name(), "version": version, "reason": reason})),
        )
        .await),
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

/// `failed`, a worker's failure on a version, unless a DELETE removed the
/// version meanwhile: then the client raced itself, and the answer is 404.
pub(crate) async fn unless_deleted(
    state: &AppState,
    model: &ModelName,
    version: Version,
    failed: ApiError,
) -> ApiError {
    if !matches!(&failed, ApiError::Error { status, .. } if *status == StatusCode::INTERNAL_SERVER_ERROR)
    {
        return failed;
    }
    match state
        .store
        .wait_settled(model, version, Duration::ZERO)
        .await
    {
        // Said as what happened: an unpinned request never named a version.
        Err(StoreError::UnknownVersion { .. } | StoreError::UnknownModel(_)) => ApiError::fail(
            StatusCode::NOT_FOUND,
            "version",
            format!(
                "version {version} of model '{model}' was deleted while this request used it; \
                 GET /v1/models/{model} lists the versions left"
            ),
        ),
        _ => failed,
    }
}

pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        // Which one a retry would repeat is anyone's guess.
        return Err(ApiError::field(
            "Idempotency-Key",
            "is given more than once; send one key",
        ));
    }
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

/// An idempotency key and the digest of the body it came with.
pub(crate) struct Keyed {
    pub(crate) key: String,
    pub(crate) digest: Option<String>,
}

/// Registers a pending version of `model`, under the request's
/// idempotency key and body digest when it has them, within its tenant's
/// storage quota. A version that extends `base` (new observations) is
/// registered only while `base` is still the newest: a fit registered in
/// between would otherwise be superseded by a version without its data.
pub(crate) async fn register(
    state: &AppState,
    model: &ModelName,
    n_series: usize,
    key: Option<&Keyed>,
    base: Option<Version>,
) -> Result<Registered, FitError> {
    let _turn = state.registrations.take(model).await;
    let _storage = state
        .auth
        .storage_turn(&model.tenant())
        .await
        .map_err(FitError::Refused)?;
    if let Some(base) = base {
        let newest = state
            .store
            .latest_version(model)
            .await
            .map_err(FitError::Store)?;
        // (A replay checked its values against the newest version too, and
        // the store answers it with the version it registered.)
        if newest != Some(base) {
            return Err(FitError::Refused(superseded(model, base, newest)));
        }
    }
    state
        .store
        .register_pending_keyed(
            model,
            n_series,
            key.map(|k| k.key.as_str()),
            key.and_then(|k| k.digest.as_deref()),
        )
        .await
        .map_err(FitError::Store)
}

/// The 409 of new observations whose base is no longer the newest version.
fn superseded(model: &ModelName, base: Version, newest: Option<Version>) -> ApiError {
    let newest = newest.map_or("none".to_string(), |v| v.to_string());
    ApiError::fail(
        StatusCode::CONFLICT,
        "version",
        format!(
            "version {newest} of model '{model}' was registered while these observations were \
             checked against version {base}; send them again to extend the newest version"
        ),
    )
}

pub(crate) fn keyed(
    headers: &HeaderMap,
    digest: Option<String>,
) -> Result<Option<Keyed>, ApiError> {
    Ok(idempotency_key(headers)?.map(|key| Keyed { key, digest }))
}

/// What `/readyz` says when a queue has no consumer.
fn no_workers(c: &transport::Consumers) -> Option<String> {
    match (c.fit, c.forecast) {
        (0, 0) => Some("no worker listens for fits or forecasts".to_string()),
        (0, _) => Some("no worker listens for fits".to_string()),
        (_, 0) => Some("no worker listens for forecasts".to_string()),
        _ => None,
    }
}

/// A 503 at once when the transport knows that no worker listens on the
/// queue `count` picks, instead of a job that waits for its timeout.
/// Counts are cached by the transport (half a second), so this is not a
/// round trip to the broker per request; when they cannot be read, the job
/// is sent and the transport's own errors decide.
pub(crate) async fn workers_listening(
    state: &AppState,
    count: impl Fn(&transport::Consumers) -> u32,
    what: &str,
) -> Result<(), ApiError> {
    let counts = tokio::time::timeout(READY_TIMEOUT, state.transport.consumers(false)).await;
    let Ok(Ok(Some(counts))) = counts else {
        return Ok(());
    };
    if count(&counts) > 0 {
        return Ok(());
    }
    Err(ApiError::error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("no worker is listening for {what}s now; start a worker (horizon worker) or retry later"),
    ))
}

pub(crate) fn with_replay_header(mut response: Response, replayed: bool) -> Response {
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

pub(crate) fn version_failed(model: &ModelName, version: Version, reason: &str) -> ApiError {
    ApiError::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("version {version} of model '{model}' failed: {reason}"),
    )
    .with_data(json!({"model": model.name(), "version": version, "reason": reason}))
}

pub(crate) fn pending_error(e: StoreError, model: &ModelName, version: Version) -> ApiError {
    match e {
        StoreError::WaitTimeout(waited) => ApiError::error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "version {version} of model '{model}' is still pending after {}; try again later",
                humantime::format_duration(waited)
            ),
        )
        .with_data(json!({"model": model.name(), "version": version})),
        other => store_error(other),
    }
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::UnknownModel(model) => {
            ApiError::field("model", format!("model '{model}' does not exist"))
        }
        StoreError::Unavailable(_) => {
            tracing::error!(error = %e, "store unavailable");
            ApiError::error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        StoreError::WaitTimeout(_) => ApiError::error(StatusCode::GATEWAY_TIMEOUT, e.to_string()),
        StoreError::KeyReused { version } => ApiError::fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Idempotency-Key",
            format!(
                "this key was used for version {version} with another request body; use a new \
                 key for a new fit, or send the same body again to get that version's answer"
            ),
        ),
        // A version this request saw (or registered) was deleted by another
        // request meanwhile: gone, not a fault of ours.
        StoreError::UnknownVersion { model, version } => ApiError::fail(
            StatusCode::NOT_FOUND,
            "version",
            format!(
                "model '{model}' has no version {version} (another request may have deleted \
                 it meanwhile); GET /v1/models/{model} lists them"
            ),
        ),
        StoreError::Internal(_) => {
            tracing::error!(error = %e, "store error");
            ApiError::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

pub(crate) fn transport_error(e: TransportError, what: &str) -> ApiError {
    tracing::error!(error = %e, what, "transport error");
    let status = match e {
        TransportError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        TransportError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        TransportError::TooLarge { .. }
        | TransportError::DeadLettered(_)
        | TransportError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::error(status, format!("the {what} could not be completed: {e}"))
}

pub(crate) fn status_name(status: &VersionStatus) -> &'static str {
    match status {
        VersionStatus::Pending => "pending",
        VersionStatus::Ready => "ready",
        VersionStatus::Failed { .. } => "failed",
    }
}

fn describe(info: &ModelInfo) -> ModelAnswer<'_> {
    ModelAnswer {
        name: &info.name,
        latest_version: Some(info.latest_version),
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
        method: v.method,
        n_fallbacks: v.n_fallbacks,
    }
}

// ---- answers (structs, so fields keep a readable order) ----

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SeedFitAnswer<'a> {
    #[serde(serialize_with = "ModelName::serialize_name")]
    #[schema(value_type = String, example = "shop")]
    model: &'a ModelName,
    version: Version,
    #[schema(value_type = crate::openapi::MethodName)]
    method: engine::Method,
    chosen: Option<&'a str>,
    fallback: Option<&'a str>,
    n_obs: usize,
    n_missing: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    freq: Option<String>,
    /// Where an integer `ds` ends, and its step.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<protocol::calendar::IndexAxis>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SeedForecastAnswer {
    #[serde(serialize_with = "ModelName::serialize_name")]
    #[schema(value_type = String, example = "shop")]
    model: ModelName,
    version: Version,
    forecast: Vec<f64>,
    /// The forecast steps' timestamps, when the series had timestamps
    /// (or integer positions, when it was fitted on them).
    #[serde(skip_serializing_if = "Option::is_none")]
    ds: Option<crate::dates::Labels>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct V1FitAnswer {
    #[serde(serialize_with = "ModelName::serialize_name")]
    #[schema(value_type = String, example = "shop")]
    pub(crate) model: ModelName,
    pub(crate) version: Version,
    #[schema(value_type = crate::openapi::VersionStatusName)]
    pub(crate) status: &'static str,
    #[schema(value_type = crate::openapi::MethodName)]
    pub(crate) method: engine::Method,
    pub(crate) series: Vec<protocol::SeriesFit>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct V1ForecastAnswer {
    #[serde(serialize_with = "ModelName::serialize_name")]
    #[schema(value_type = String, example = "shop")]
    model: ModelName,
    version: Version,
    horizon: usize,
    series: Vec<SeriesAnswer>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SeriesAnswer {
    id: String,
    /// The forecast steps' timestamps, when the series had timestamps
    /// (or integer positions, when it was fitted on them).
    #[serde(skip_serializing_if = "Option::is_none")]
    ds: Option<crate::dates::Labels>,
    mean: Vec<f64>,
    #[schema(value_type = Vec<crate::openapi::Interval>)]
    intervals: Vec<engine::Interval>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ModelListEntry<'a> {
    #[serde(serialize_with = "ModelName::serialize_name")]
    #[schema(value_type = String, example = "shop")]
    name: &'a ModelName,
    latest_version: Option<Version>,
    #[schema(value_type = Option<crate::openapi::VersionStatusName>)]
    latest_status: Option<&'static str>,
    n_versions: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ModelAnswer<'a> {
    #[serde(serialize_with = "ModelName::serialize_name")]
    #[schema(value_type = String, example = "shop")]
    name: &'a ModelName,
    latest_version: Option<Version>,
    versions: Vec<VersionAnswer<'a>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct VersionAnswer<'a> {
    version: Version,
    #[schema(value_type = crate::openapi::VersionStatusName)]
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[schema(example = "2026-11-29T21:10:39.984Z")]
    created_at: String,
    n_series: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::openapi::MethodName>)]
    method: Option<engine::Method>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n_fallbacks: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_deleted_under_a_request_is_a_404_not_a_500() {
        // Schemathesis found this: a rollback whose new version a concurrent
        // DELETE removed before it was saved answered 500.
        let model = ModelName::parse("m").unwrap();
        let e = store_error(StoreError::UnknownVersion { model, version: 15 });
        match e {
            ApiError::Fail(status, fields) => {
                assert_eq!(status, StatusCode::NOT_FOUND);
                assert!(fields["version"].contains("no version 15"), "{fields:?}");
            }
            other => panic!("expected a fail, got {other:?}"),
        }
        let e = store_error(StoreError::Internal("boom".into()));
        assert!(
            matches!(e, ApiError::Error { status, .. } if status == StatusCode::INTERNAL_SERVER_ERROR)
        );
    }
}
