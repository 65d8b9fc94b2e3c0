//! TimeGPT-compatible endpoints, so that Nixtla's unmodified `nixtla`
//! Python client (`NixtlaClient(base_url=..., api_key=...)`) forecasts and
//! cross-validates with Horizon.
//!
//! A translation layer, not a second implementation: each request is turned
//! into Horizon's own work and sent down the normal path (gateway →
//! transport → workers), so in distributed mode the workers compute it:
//! - `POST /v2/forecast` is a fit of a new version of the tenant's model
//!   [`COMPAT_MODEL`] (`handlers::fit_from`: admission, idempotent
//!   registration, dispatch) and a forecast of exactly that version
//!   (`handlers::forecast`); the version is deleted once forecast (the
//!   newest stays, like any model's, until the next one or retention).
//! - `POST /v2/cross_validation` is a backtest job (`backtest::run`) on the
//!   sent series, nothing stored.
//!
//! What the client sends and expects (read from its source, nixtla 0.9):
//! - `GET /model_params?model=&freq=` → `{"detail": {"input_size", "horizon"}}`;
//!   the client then sends only the last `input_size` values of each series
//!   (`3 * input_size + max(horizon, h)` with `level`), and with `level`
//!   refuses series shorter than `input_size + horizon` itself.
//! - `POST /v2/forecast` with `{"series": {"y", "sizes", "X", "X_future"},
//!   "model", "h", "freq", "level", "finetune_steps", ...}` (zstd-compressed
//!   with `Content-Encoding: zstd` above 1 MiB) → `{"mean": [n_series * h],
//!   "intervals": {"lo-80": [...], "hi-80": [...]} | null, "weights_x": null}`.
//! - `POST /v2/cross_validation` with `h`, `n_windows`, `step_size` →
//!   `{"idxs", "sizes", "mean", "intervals"}`: `idxs` index the sent `y` at
//!   each forecast step, `sizes` count the rows per series.
//! - The async variants (`submit_forecast_job`, `submit_cross_validation_job`,
//!   and `forecast`/`cross_validation` of partitions or Spark/Dask/Ray frames
//!   run as jobs): `POST /v2/{forecast,cross_validation}/async` (the same
//!   body, plus `job_options.timeout_seconds`) → `{"job_id"}`;
//!   `GET /v2/{forecast,cross_validation}/jobs/{id}` → `{"job_id", "status":
//!   pending|running|succeeded|failed|cancelled, "result", "error"}` (read
//!   as is, not unwrapped: the one answer here that is not JSend, since its
//!   `status` is the job's); `POST /v2/async/jobs/{id}/cancel`.
//!   A job is one of Horizon's own jobs (`store::jobs`, kinds
//!   [`JOB_FORECAST`] and [`JOB_CROSS_VALIDATION`], also visible at
//!   `/v1/jobs/{id}`) whose outcome, the answer's `data`, is kept in its
//!   row: any gateway sharing the store answers for it. Its work is run by
//!   the gateway that accepted it, through the same translation (so on the
//!   workers).
//!
//! Answers are JSend (`{"status": "success", "data": ...}`): the client
//! unwraps `data`. Statuses other than 200 show in the client as
//! `ApiError(status_code, body)`; it retries 408, 409, 429 and 5xx-gateway
//! codes, so what can never succeed (fine-tuning, exogenous features) is a
//! 400 `fail` that names the field.
//!
//! Models: every TimeGPT name (`timegpt-1`, `timegpt-1-long-horizon`,
//! `timegpt-2.1` — the client's default —, any `timegpt-*`, and `azureai`)
//! is Horizon's `auto`; a Horizon method name (`ets`, `theta`, `arima`, ...)
//! picks that method. `GET /v2/models` lists them. `freq` proposes the season
//! lengths (`protocol::calendar`).

use crate::auth::Caller;
use crate::handlers;
use crate::jsend::{success, ApiError, FieldErrors};
use crate::validate::{FitRequest, ForecastRequest};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::backtest::BacktestOptions;
use engine::{Horizon, Level, Method, ModelSpec, SeriesData};
use protocol::calendar::Freq;
use protocol::{BacktestJob, ModelName, NamedSeries, Tenant};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::time::Duration;
use store::{JobInfo, JobStatus};

/// Largest decompressed body accepted (the client refuses above 200 MiB itself).
const MAX_DECOMPRESSED: u64 = 256 * 1024 * 1024;

/// The model (in each tenant) whose versions the TimeGPT forecasts fit.
pub const COMPAT_MODEL: &str = "nixtla";

/// The kinds of the jobs of `POST /v2/{forecast,cross_validation}/async`
/// in the store (beside `fit` and `backtest`).
pub const JOB_FORECAST: &str = "timegpt_forecast";
pub const JOB_CROSS_VALIDATION: &str = "timegpt_cross_validation";

/// Series per forecast request sent down the path: a thousand series ×
/// 12 steps × 2 levels is 60,000 values, far under the answer limit.
const SERIES_PER_FORECAST: usize = 1000;

/// The routes, merged into the API's router (lib.rs).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/model_params", get(model_params))
        .route("/validate_api_key", get(validate_api_key))
        .route("/v2/models", get(list_models))
        .route("/v2/forecast", post(forecast))
        .route("/v2/cross_validation", post(cross_validation))
        .route("/v2/forecast/async", post(submit_forecast))
        .route("/v2/cross_validation/async", post(submit_cross_validation))
        .route("/v2/forecast/jobs/{id}", get(forecast_job))
        .route("/v2/cross_validation/jobs/{id}", get(cross_validation_job))
        .route("/v2/async/jobs/{id}/cancel", post(cancel_job))
        .route("/v2/finetune", post(unsupported))
        .route("/v2/finetune/async", post(unsupported))
        .route("/v2/historic_forecast", post(unsupported))
        .route("/v2/anomaly_detection", post(unsupported))
        .route("/v2/online_anomaly_detection", post(unsupported))
}

/// `GET /model_params`: how much history the client sends, per frequency.
pub async fn model_params(Query(query): Query<HashMap<String, String>>) -> Response {
    let seasons = query
        .get("freq")
        .and_then(|f| Freq::parse(f).ok())
        .map(|f| f.season_candidates())
        .unwrap_or_default();
    let (input_size, horizon) = model_params_for(seasons.last().copied().unwrap_or(1));
    let params = json!({"input_size": input_size, "horizon": horizon});
    // The client reads `detail`; JSend readers find the same in `data`.
    Json(json!({"status": "success", "data": params, "detail": params})).into_response()
}

/// The client sends the last `input_size` values of each series (three
/// times as many with `level`): eight of the longest season of the
/// frequency, 64 to 1,000 values, enough for the statistical models and
/// their season detection. `horizon` (the client only warns beyond it) is
/// one such season, at least 12.
fn model_params_for(season: usize) -> (usize, usize) {
    ((8 * season).clamp(64, 1000), season.max(12))
}

/// `GET /validate_api_key`: reached only past authentication (auth.rs), so
/// a server with keys has accepted the caller's key by now.
pub async fn validate_api_key() -> Response {
    Json(json!({"status": "success", "data": {"valid": true}, "detail": "API key valid"}))
        .into_response()
}

/// The TimeGPT names the client proposes, all Horizon's `auto`.
const TIMEGPT_MODELS: [&str; 4] = [
    "timegpt-1",
    "timegpt-1-long-horizon",
    "timegpt-2",
    "timegpt-2.1",
];

/// `GET /v2/models`: the model names `forecast(model=...)` accepts.
pub async fn list_models() -> Response {
    let models: Vec<Value> = TIMEGPT_MODELS
        .iter()
        .map(|m| json!({"name": m, "horizon_method": "auto"}))
        .chain(
            Method::ALL
                .iter()
                .map(|m| json!({"name": m.name(), "horizon_method": m.name()})),
        )
        .collect();
    Json(json!({"status": "success", "data": {"models": models}, "models": models})).into_response()
}

/// `POST /v2/finetune`, `/v2/historic_forecast`, `/v2/anomaly_detection`, ...
pub async fn unsupported(uri: axum::http::Uri) -> ApiError {
    ApiError::fail(
        StatusCode::BAD_REQUEST,
        "endpoint",
        format!(
            "{} is not supported by Horizon: it offers forecast and cross_validation with \
             statistical models (no fine-tuning, no exogenous features, no anomaly detection)",
            uri.path()
        ),
    )
}

#[derive(Deserialize)]
struct SeriesPayload {
    y: Vec<Option<f64>>,
    sizes: Vec<usize>,
    #[serde(default, rename = "X")]
    x: Option<Value>,
    #[serde(default, rename = "X_future")]
    x_future: Option<Value>,
    #[serde(default)]
    categorical_exog: Option<Value>,
}

#[derive(Deserialize, Default)]
struct JobOptions {
    #[serde(default)]
    timeout_seconds: Option<u64>,
}

/// The fields of `/v2/forecast` and `/v2/cross_validation` Horizon reads;
/// the others (`clean_ex_first`, `finetune_loss`, ...) are ignored.
#[derive(Deserialize)]
struct Payload {
    series: SeriesPayload,
    #[serde(default)]
    model: Option<String>,
    h: i64,
    #[serde(default)]
    freq: Option<String>,
    #[serde(default)]
    level: Option<Vec<f64>>,
    #[serde(default)]
    finetune_steps: Option<u64>,
    #[serde(default)]
    finetuned_model_id: Option<String>,
    #[serde(default)]
    feature_contributions: Option<bool>,
    #[serde(default)]
    hist_exog: Option<Value>,
    #[serde(default)]
    n_windows: Option<i64>,
    #[serde(default)]
    step_size: Option<i64>,
    #[serde(default)]
    multivariate: Option<bool>,
    #[serde(default)]
    refit: Option<bool>,
    #[serde(default)]
    full_history: Option<bool>,
    #[serde(default)]
    job_options: Option<JobOptions>,
}

/// A payload checked and turned into Horizon's inputs: series named
/// `"0"`, `"1"`, ... in the order sent.
struct Request {
    series: Vec<NamedSeries>,
    spec: ModelSpec,
    horizon: Horizon,
    levels: Vec<Level>,
}

#[derive(Serialize)]
struct ForecastAnswer {
    mean: Vec<f64>,
    intervals: Option<BTreeMap<String, Vec<f64>>>,
    weights_x: Option<Value>,
    feature_contributions: Option<Value>,
}

#[derive(Serialize)]
struct CrossValidationAnswer {
    idxs: Vec<usize>,
    sizes: Vec<usize>,
    mean: Vec<f64>,
    intervals: Option<BTreeMap<String, Vec<f64>>>,
}

/// What a request computes, once checked.
enum Work {
    Forecast(Request),
    CrossValidation(Request, BacktestOptions),
}

impl Work {
    /// Refuses, before anything is fitted, an answer over the cap of a
    /// forecast answer: the whole answer, all series, is held at once.
    fn check_size(&self, state: &AppState) -> Result<(), ApiError> {
        let admission = &state.admission;
        match self {
            Work::Forecast(r) => admission
                .forecast_size(r.horizon.get(), r.series.len(), r.levels.len())
                .map_err(|e| e.renamed("horizon", "h")),
            Work::CrossValidation(r, opts) => admission.backtest_size(
                r.horizon.get(),
                opts.n_windows,
                r.series.len(),
                r.levels.len(),
                "n_windows",
            ),
        }
    }

    /// Runs the translation (as the job `job`, when one); the answer's
    /// `data` as JSON.
    async fn run(
        self,
        state: &AppState,
        tenant: &Tenant,
        job: Option<String>,
    ) -> Result<Value, ApiError> {
        let answer = match self {
            Work::Forecast(r) => to_value(forecast_via_workers(state, tenant, r).await?),
            Work::CrossValidation(r, opts) => {
                to_value(cross_validate_via_workers(state, r, opts, job).await?)
            }
        };
        answer.map_err(|e| ApiError::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }
}

fn to_value(answer: impl Serialize) -> Result<Value, serde_json::Error> {
    serde_json::to_value(answer)
}

/// `POST /v2/forecast`.
pub async fn forecast(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (work, _) = read(&headers, body, Kind::Forecast).await?;
    work.check_size(&state)?;
    Ok(success(work.run(&state, &tenant, None).await?))
}

/// `POST /v2/cross_validation`.
pub async fn cross_validation(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (work, _) = read(&headers, body, Kind::CrossValidation).await?;
    work.check_size(&state)?;
    Ok(success(work.run(&state, &tenant, None).await?))
}

/// Reads and checks a body as `kind` asks; also its job timeout, if any.
async fn read(
    headers: &HeaderMap,
    body: Bytes,
    kind: Kind,
) -> Result<(Work, Option<Duration>), ApiError> {
    let payload = parse(headers, body).await?;
    let request = check(&payload)?;
    let timeout = payload
        .job_options
        .as_ref()
        .and_then(|o| o.timeout_seconds)
        .filter(|&s| s > 0)
        .map(Duration::from_secs);
    let work = match kind {
        Kind::Forecast => Work::Forecast(request),
        Kind::CrossValidation => {
            let opts = backtest_options(&payload, &request)?;
            Work::CrossValidation(request, opts)
        }
    };
    Ok((work, timeout))
}

fn backtest_options(p: &Payload, r: &Request) -> Result<BacktestOptions, ApiError> {
    let mut errors = FieldErrors::new();
    let h = r.horizon.get();
    let max = crate::backtest::MAX_WINDOWS;
    let n_windows = bounded(p.n_windows.unwrap_or(1), max, "n_windows", &mut errors);
    let step_size = bounded(
        p.step_size.unwrap_or(h as i64),
        engine::MAX_SERIES_LEN,
        "step_size",
        &mut errors,
    );
    if p.full_history == Some(true) {
        errors.insert(
            "full_history".into(),
            "in-sample forecasts over the whole history (add_history=True) are not supported \
             by Horizon; use cross_validation"
                .into(),
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::Fail(StatusCode::BAD_REQUEST, errors));
    }
    Ok(BacktestOptions {
        horizon: r.horizon,
        n_windows,
        step_size,
        // Nixtla's `refit` is about fine-tuning; here it picks refitting at
        // every origin (its default) or filtering the first fit forward.
        refit: p.refit.unwrap_or(true),
        levels: r.levels.clone(),
        include_forecasts: true,
    })
}

fn bounded(value: i64, max: usize, field: &str, errors: &mut FieldErrors) -> usize {
    match usize::try_from(value) {
        Ok(v) if (1..=max).contains(&v) => v,
        _ => {
            errors.insert(
                field.into(),
                format!("must be an integer from 1 to {max}, got {value}"),
            );
            1
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|_| {
        tracing::error!("reading a TimeGPT-compatible request panicked");
        ApiError::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error while reading the request",
        )
    })
}

/// The body, decompressed when the client sent it as zstd (the only
/// encoding Nixtla's client uses; any other is a 415), parsed.
async fn parse(headers: &HeaderMap, body: Bytes) -> Result<Payload, ApiError> {
    let encoding = headers.get(header::CONTENT_ENCODING);
    let zstd = encoding
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("zstd"));
    if !zstd {
        crate::body::check_content_encoding(encoding)?;
    }
    blocking(move || {
        let text = if zstd {
            decompress(&body)?
        } else {
            body.to_vec()
        };
        serde_json::from_slice::<Payload>(&text)
            .map_err(|e| ApiError::field("body", format!("not a TimeGPT request body: {e}")))
    })
    .await?
}

/// Every zstd frame of `body`, concatenated, up to [`MAX_DECOMPRESSED`] bytes.
fn decompress(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let bad = |e: String| ApiError::field("body", format!("the body is not valid zstd: {e}"));
    let mut input = body;
    let mut out = Vec::new();
    while !input.is_empty() {
        let decoder =
            ruzstd::decoding::StreamingDecoder::new(&mut input).map_err(|e| bad(e.to_string()))?;
        let mut limited = decoder.take(MAX_DECOMPRESSED + 1 - out.len() as u64);
        limited
            .read_to_end(&mut out)
            .map_err(|e| bad(e.to_string()))?;
        if out.len() as u64 > MAX_DECOMPRESSED {
            return Err(ApiError::fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body",
                format!("the decompressed body is larger than {MAX_DECOMPRESSED} bytes"),
            ));
        }
    }
    Ok(out)
}

/// Horizon's method for a TimeGPT model name (or a Horizon method name).
fn method_for(model: Option<&str>) -> Result<Method, String> {
    match model {
        None | Some("azureai") => Ok(Method::Auto),
        Some(name) if name.starts_with("timegpt") => Ok(Method::Auto),
        Some(other) => other.parse::<Method>().map_err(|_| {
            format!(
                "unknown model '{other}'; use a TimeGPT name such as timegpt-2.1 (Horizon's \
                 'auto') or a Horizon method such as ets, arima, theta"
            )
        }),
    }
}

fn check(p: &Payload) -> Result<Request, ApiError> {
    let mut errors = FieldErrors::new();
    let unsupported = "is not supported by Horizon (statistical models, no fine-tuning)";
    if p.finetune_steps.is_some_and(|s| s > 0) {
        errors.insert(
            "finetune_steps".into(),
            format!("fine-tuning {unsupported}"),
        );
    }
    if p.finetuned_model_id.is_some() {
        errors.insert(
            "finetuned_model_id".into(),
            format!("a fine-tuned model {unsupported}"),
        );
    }
    let exogenous =
        "exogenous features are not supported by Horizon; send only unique_id, ds and y";
    if p.series.x.as_ref().is_some_and(|x| !x.is_null()) {
        errors.insert("series.X".into(), exogenous.into());
    }
    if p.series.x_future.as_ref().is_some_and(|x| !x.is_null()) {
        errors.insert("series.X_future".into(), exogenous.into());
    }
    if p.series
        .categorical_exog
        .as_ref()
        .is_some_and(|x| !x.is_null())
    {
        errors.insert("series.categorical_exog".into(), exogenous.into());
    }
    if p.multivariate == Some(true) {
        errors.insert("multivariate".into(), "multivariate forecasting is not supported by Horizon; each series is forecast on its own".into());
    }
    if p.hist_exog.as_ref().is_some_and(|x| !x.is_null()) {
        errors.insert("hist_exog".into(), exogenous.into());
    }
    if p.feature_contributions == Some(true) {
        errors.insert(
            "feature_contributions".into(),
            "feature contributions (SHAP) are not supported by Horizon".into(),
        );
    }
    let method = method_for(p.model.as_deref()).map_err(|e| errors.insert("model".into(), e));
    let horizon = Horizon::parse(p.h).map_err(|e| errors.insert("h".into(), e.to_string()));
    let mut levels: Vec<Level> = Vec::new();
    for &l in p.level.iter().flatten() {
        // Nixtla's client turns `quantiles` into levels: the median (0.5)
        // becomes level 0, which it then reads from the mean forecast, and
        // 0.1 and 0.9 both become 80. Neither is a mistake of the caller.
        if l == 0.0 {
            continue;
        }
        match Level::parse(l) {
            Ok(level) if levels.contains(&level) => {}
            Ok(level) => levels.push(level),
            Err(e) => {
                errors.insert("level".into(), e.to_string());
            }
        }
    }
    let total: usize = p.series.sizes.iter().sum();
    if total != p.series.y.len() {
        errors.insert(
            "series.sizes".into(),
            format!(
                "the sizes add up to {total} but series.y has {} values",
                p.series.y.len()
            ),
        );
    }
    if p.series.sizes.is_empty() {
        errors.insert("series.sizes".into(), "no series was sent".into());
    }
    let mut series = Vec::with_capacity(p.series.sizes.len());
    if total == p.series.y.len() {
        let mut start = 0;
        for (i, &size) in p.series.sizes.iter().enumerate() {
            // null (the client's NaN) is a gap the models fill.
            let values = p.series.y[start..start + size].to_vec();
            start += size;
            match SeriesData::with_gaps(values) {
                Ok(values) => series.push(NamedSeries {
                    id: i.to_string(),
                    values,
                    calendar: None,
                    index: None,
                }),
                Err(e) => {
                    errors
                        .entry("series.y".into())
                        .or_insert(format!("series {i}: {e}"));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Fail(StatusCode::BAD_REQUEST, errors));
    }
    let (Ok(method), Ok(horizon)) = (method, horizon) else {
        unreachable!("errors were reported above");
    };
    let mut spec = ModelSpec::with_seasons(method, Vec::new());
    spec.season_candidates = p
        .freq
        .as_deref()
        .and_then(|f| Freq::parse(f).ok())
        .map(|f| f.season_candidates())
        .unwrap_or_default();
    Ok(Request {
        series,
        spec,
        horizon,
        levels,
    })
}

/// Intervals in the client's layout: `lo-80`/`hi-80` keys of flat arrays,
/// from each forecast's intervals in order.
fn interval_columns<'a>(
    levels: &[Level],
    intervals: impl Iterator<Item = &'a [engine::Interval]> + Clone,
) -> Option<BTreeMap<String, Vec<f64>>> {
    if levels.is_empty() {
        return None;
    }
    let mut out = BTreeMap::new();
    for level in levels {
        let name = level_name(level.percent());
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for bands in intervals.clone() {
            if let Some(band) = bands.iter().find(|b| b.level == level.percent()) {
                lo.extend_from_slice(&band.lower);
                hi.extend_from_slice(&band.upper);
            }
        }
        out.insert(format!("lo-{name}"), lo);
        out.insert(format!("hi-{name}"), hi);
    }
    Some(out)
}

fn level_name(level: f64) -> String {
    if level.fract() == 0.0 {
        format!("{}", level as i64)
    } else {
        format!("{level}")
    }
}

/// A fit of a new version of the tenant's [`COMPAT_MODEL`] on the workers,
/// then a forecast of exactly that version; the version is then deleted
/// (the store refuses to delete the newest, which stays until the next
/// fit or retention prunes it).
async fn forecast_via_workers(
    state: &AppState,
    tenant: &Tenant,
    r: Request,
) -> Result<ForecastAnswer, ApiError> {
    let model = ModelName::parse_in(tenant, COMPAT_MODEL).expect("a valid model name");
    let n_series = r.series.len();
    let fit = FitRequest {
        series: r.series,
        spec: r.spec,
    };
    let summary = handlers::fit_from(state, model.clone(), fit, None, None)
        .await
        .into_result()?;
    let version = summary.version;
    // In batches of series, each a forecast job of modest size (the whole
    // answer was checked against the cap before the fit: `Work::check_size`).
    let ids: Vec<String> = (0..n_series).map(|i| i.to_string()).collect();
    let mut forecasts = Vec::with_capacity(n_series);
    let mut outcome = Ok(());
    for batch in ids.chunks(SERIES_PER_FORECAST) {
        let request = ForecastRequest {
            horizon: r.horizon,
            levels: r.levels.clone(),
            series_ids: Some(batch.to_vec()),
            version: Some(version),
            one_series: false,
        };
        let answer = handlers::forecast(state, &model, request, || {
            ApiError::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("model '{model}' vanished between its fit and its forecast"),
            )
        })
        .await;
        match answer {
            Ok((result, _)) => forecasts.extend(result.series),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let store = state.store.clone();
    let forgotten = model.clone();
    tokio::spawn(async move {
        // Refused for the newest version; nothing else can go wrong that matters.
        if let Err(e) = store.delete_version(&forgotten, version).await {
            tracing::debug!(model = %forgotten, version, error = %e, "compat version kept");
        }
    });
    outcome?;
    metrics::histogram!(crate::metrics::FORECAST_BATCH).record(forecasts.len() as f64);
    if forecasts.len() != n_series {
        return Err(ApiError::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the forecast has {} series, the request {n_series}",
                forecasts.len()
            ),
        ));
    }
    Ok(ForecastAnswer {
        mean: forecasts
            .iter()
            .flat_map(|s| s.forecast.mean.iter().copied())
            .collect(),
        intervals: interval_columns(
            &r.levels,
            forecasts.iter().map(|s| s.forecast.intervals.as_slice()),
        ),
        weights_x: None,
        feature_contributions: None,
    })
}

/// The workers' rolling-origin backtest of the sent series, its windows
/// laid out as the client reads them: `idxs` of the forecast steps in the
/// sent `y`, one `sizes` entry (rows) per series. `job`: the job it runs
/// as, if any (the worker reports there and stops when it is cancelled).
async fn cross_validate_via_workers(
    state: &AppState,
    r: Request,
    opts: BacktestOptions,
    job: Option<String>,
) -> Result<CrossValidationAnswer, ApiError> {
    let h = opts.horizon.get();
    let lengths: Vec<usize> = r.series.iter().map(|s| s.values.len()).collect();
    let levels = opts.levels.clone();
    let job = BacktestJob {
        spec: r.spec,
        series: r.series,
        source: None,
        options: opts,
        job,
    };
    let result = crate::backtest::run(state, job).await?;
    if result.series.len() != lengths.len() {
        return Err(ApiError::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the backtest has {} series, the request {}",
                result.series.len(),
                lengths.len()
            ),
        ));
    }
    let mut idxs = Vec::new();
    let mut sizes = Vec::with_capacity(lengths.len());
    let mut start = 0;
    for (series, len) in result.series.iter().zip(&lengths) {
        for window in &series.windows {
            idxs.extend((1..=h).map(|j| start + window.cutoff + j));
        }
        sizes.push(series.windows.len() * h);
        start += len;
    }
    let windows = || result.series.iter().flat_map(|s| s.windows.iter());
    Ok(CrossValidationAnswer {
        idxs,
        sizes,
        mean: windows().flat_map(|w| w.mean.iter().copied()).collect(),
        intervals: interval_columns(&levels, windows().map(|w| w.intervals.as_slice())),
    })
}

// ---- async jobs ----

/// What a job computes; a job is polled under its own kind's path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Forecast,
    CrossValidation,
}

impl Kind {
    /// The kind of its job in the store (`store::jobs`).
    fn job_kind(self) -> &'static str {
        match self {
            Kind::Forecast => JOB_FORECAST,
            Kind::CrossValidation => JOB_CROSS_VALIDATION,
        }
    }
}

/// `POST /v2/forecast/async`.
pub async fn submit_forecast(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    submit(state, tenant, &headers, body, Kind::Forecast).await
}

/// `POST /v2/cross_validation/async`.
pub async fn submit_cross_validation(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    submit(state, tenant, &headers, body, Kind::CrossValidation).await
}

/// Checks the body now (a bad request is refused at once, not as a failed
/// job), then runs the work as a job of Horizon's own (`jobs::spawn_own`).
async fn submit(
    state: AppState,
    tenant: Tenant,
    headers: &HeaderMap,
    body: Bytes,
    kind: Kind,
) -> Result<Response, ApiError> {
    let (work, timeout) = read(headers, body, kind).await?;
    work.check_size(&state)?;
    let total = match &work {
        Work::Forecast(r) | Work::CrossValidation(r, _) => r.series.len() as u64,
    };
    let model = ModelName::default_model_in(&tenant);
    let task_state = state.clone();
    let run = |id| async move {
        let run = work.run(&task_state, &tenant, Some(id));
        match timeout {
            Some(limit) => tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
                Err(ApiError::error(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "the job did not finish within its {} (job_options.timeout_seconds)",
                        humantime::format_duration(limit)
                    ),
                ))
            }),
            None => run.await,
        }
    };
    let info = crate::jobs::spawn_own(&state, kind.job_kind(), &model, 0, total, run).await?;
    let mut response = success(json!({"job_id": info.id, "status": "pending"}));
    *response.status_mut() = StatusCode::ACCEPTED;
    Ok(response)
}

/// `GET /v2/forecast/jobs/{id}`.
pub async fn forecast_job(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    job_status(&state, &tenant, &id, Kind::Forecast).await
}

/// `GET /v2/cross_validation/jobs/{id}`.
pub async fn cross_validation_job(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    job_status(&state, &tenant, &id, Kind::CrossValidation).await
}

/// The tenant's job `id` if it is one of these endpoints' jobs.
async fn find_job(state: &AppState, tenant: &Tenant, id: &str) -> Result<JobInfo, ApiError> {
    let info = crate::jobs::find(state, tenant, id).await?;
    if info.kind == JOB_FORECAST || info.kind == JOB_CROSS_VALIDATION {
        Ok(info)
    } else {
        Err(ApiError::fail(
            StatusCode::NOT_FOUND,
            "job_id",
            format!("no job '{id}' of /v2/forecast or /v2/cross_validation"),
        ))
    }
}

/// The job as the client reads it, not wrapped in JSend (its `status` is
/// the job's).
async fn job_status(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
    kind: Kind,
) -> Result<Response, ApiError> {
    let info = find_job(state, tenant, id).await?;
    if info.kind != kind.job_kind() {
        return Err(ApiError::fail(
            StatusCode::NOT_FOUND,
            "job_id",
            format!("job '{id}' is not a {} job", kind.job_kind()),
        ));
    }
    let (status, result, error) = match info.status {
        JobStatus::Queued | JobStatus::Running => ("running", Value::Null, Value::Null),
        JobStatus::Succeeded => (
            "succeeded",
            info.result
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or(Value::Null),
            Value::Null,
        ),
        JobStatus::Failed => (
            "failed",
            Value::Null,
            json!({"status": "error", "message": info.error}),
        ),
        JobStatus::Cancelled => ("cancelled", Value::Null, Value::Null),
    };
    Ok(
        Json(json!({"job_id": id, "status": status, "result": result, "error": error}))
            .into_response(),
    )
}

/// `POST /v2/async/jobs/{id}/cancel`: ends the job `cancelled` (its task
/// stops waiting; a fit already on a worker finishes there and is pruned
/// with the model's old versions).
pub async fn cancel_job(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    find_job(&state, &tenant, &id).await?;
    crate::jobs::cancel(&state, &tenant, &id).await?;
    Ok(success(json!({"job_id": id, "status": "cancelled"})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(body: Value) -> Payload {
        serde_json::from_value(body).expect("payload parses")
    }

    #[test]
    fn fine_tuning_and_exogenous_features_are_refused_by_field() {
        let p = payload(json!({
            "series": {"y": [1.0, 2.0, 3.0], "sizes": [3], "X": [[1.0, 2.0, 3.0]], "X_future": null},
            "model": "timegpt-1", "h": 2, "finetune_steps": 10
        }));
        let Err(ApiError::Fail(status, errors)) = check(&p) else {
            panic!("expected a fail");
        };
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(errors["finetune_steps"].contains("fine-tuning"));
        assert!(errors["series.X"].contains("exogenous"));
        assert!(!errors.contains_key("series.X_future"));
    }

    #[test]
    fn gaps_are_kept_and_cross_validation_options_are_bounded() {
        let p = payload(json!({
            "series": {"y": [1.0, null, 3.0, 4.0, 5.0, 6.0], "sizes": [6]},
            "model": "naive", "h": 2, "level": [80], "n_windows": 1000
        }));
        let r = check(&p).expect("a gap is not an error");
        assert_eq!(r.series[0].values.n_missing(), 1);
        assert_eq!(r.series[0].id, "0");
        let Err(ApiError::Fail(_, errors)) = backtest_options(&p, &r) else {
            panic!("expected a fail");
        };
        assert!(errors["n_windows"].contains("from 1 to"));
    }

    #[test]
    fn zstd_bodies_are_decompressed() {
        // "{}" compressed by the reference zstd (level 1).
        let frame = [
            0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x02, 0x11, 0x00, 0x00, 0x7b, 0x7d,
        ];
        assert_eq!(decompress(&frame).expect("decodes"), b"{}");
        assert!(decompress(b"not zstd").is_err());
    }

    #[tokio::test]
    async fn other_encodings_are_refused_not_read_as_json() {
        for encoding in ["gzip", "br"] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_ENCODING, encoding.parse().expect("header"));
            let Err(ApiError::Fail(status, errors)) =
                parse(&headers, Bytes::from_static(br#"{"series": {}}"#)).await
            else {
                panic!("{encoding}: expected a fail");
            };
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{encoding}");
            assert!(errors["content-encoding"].contains(encoding), "{errors:?}");
        }
    }

    #[test]
    fn params_follow_the_season_of_the_frequency() {
        assert_eq!(model_params_for(12), (96, 12));
        assert_eq!(model_params_for(1), (64, 12));
        assert_eq!(model_params_for(365), (1000, 365));
    }
}
