//! `POST /v1/backtest` (data in the body) and `POST /v1/models/{name}/backtest`
//! (on the training data of a version): rolling-origin evaluation, computed
//! by a worker through the transport; the gateway parses and answers.
//!
//! Like a fit, a backtest sent with `Prefer: respond-async`, or larger than
//! [`ASYNC_BACKTEST_FITS`], answers `202 Accepted` with `Location:
//! /v1/jobs/{id}` and runs as a job of kind `backtest` (see `jobs.rs`): this
//! gateway sends it to a worker and records its answer or error in the
//! job's row, unless the job was cancelled first.

use crate::auth::Caller;
use crate::body::{JsonBody, ModelPath};
use crate::handlers::{pending_error, store_error, transport_error, version_failed};
use crate::jsend::{success, ApiError, FieldErrors};
use crate::validate::{FitRequest, FromJson, V1Fit, MAX_LEVELS};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use engine::backtest::BacktestOptions;
use engine::{Horizon, Level, ModelSpec};
use protocol::{BacktestJob, BacktestResult, JobError, ModelName, NamedSeries, Version};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use store::jobs::KIND_BACKTEST;
use store::{StoreError, VersionStatus};

/// Most windows one backtest may ask for (each may be a fit).
pub const MAX_WINDOWS: usize = 100;

/// Backtests costing more fits than this (series × windows with `refit`,
/// series without) run as jobs: `202 Accepted`, `Location: /v1/jobs/{id}`.
pub const ASYNC_BACKTEST_FITS: u64 = 10_000;

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
    if let Some((i, message)) = crate::validate::repeated_level(&levels) {
        bad(&format!("level[{i}]"), message);
    }
    Some(BacktestOptions {
        horizon: horizon?,
        n_windows,
        step_size,
        refit,
        levels,
        include_forecasts,
    })
}

/// The keys a backtest reads itself; the rest of a `/v1/backtest` body is
/// a fit body.
const OPTION_KEYS: [&str; 6] = [
    "horizon",
    "n_windows",
    "step_size",
    "refit",
    "level",
    "include_forecasts",
];

/// A body's top-level members split into the backtest's own (parsed) and
/// the rest (their JSON text, so that the fit parser sees it as sent,
/// repeated keys included). A key repeated at the top level is an error.
struct Split {
    options: Map<String, Value>,
    rest: Vec<(String, Box<RawValue>)>,
}

fn object(body: &[u8], own: &[&str], errors: &mut FieldErrors) -> Result<Split, ApiError> {
    let bad_json =
        |e: serde_json::Error| ApiError::field("body", crate::validate::json_error_message(&e));
    let Members(members) = serde_json::from_slice(body).map_err(bad_json)?;
    let mut split = Split {
        options: Map::new(),
        rest: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for (key, raw) in members {
        if !seen.insert(key.clone()) {
            errors.insert(key, crate::validate::REPEATED_KEY.into());
        } else if own.contains(&key.as_str()) {
            let value = serde_json::from_str(raw.get()).map_err(bad_json)?;
            split.options.insert(key, value);
        } else {
            split.rest.push((key, raw));
        }
    }
    Ok(split)
}

/// A JSON object's members in order, repeated keys kept.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push(entry);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The members of a fit body as JSON text, in their order.
fn fit_text(members: &[(String, Box<RawValue>)]) -> String {
    let mut text = String::from("{");
    for (i, (key, raw)) in members.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        // A key came out of JSON text, so it goes back into it.
        text.push_str(&serde_json::to_string(key).unwrap_or_default());
        text.push(':');
        text.push_str(raw.get());
    }
    text.push('}');
    text
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
        let mut errors = FieldErrors::new();
        let Split { mut options, rest } = object(body, &OPTION_KEYS, &mut errors)?;
        let options = self::options(&mut options, &mut errors);
        // What is left is a fit body, as sent.
        let rest = fit_text(&rest);
        let fit = match V1Fit::from_json(rest.as_bytes()) {
            Ok(V1Fit(fit)) => Some(fit),
            Err(ApiError::Fail(_, more)) => {
                for (field, mut message) in more {
                    // The fit parser lists its own keys; a backtest takes more.
                    if !field.contains(['.', '[']) && message.starts_with("unknown field") {
                        message.push_str(", ");
                        message.push_str(&OPTION_KEYS.join(", "));
                    }
                    errors.insert(field, message);
                }
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
        let mut errors = FieldErrors::new();
        let own = [&OPTION_KEYS[..], &["version"]].concat();
        let Split {
            options: mut map,
            rest,
        } = object(body, &own, &mut errors)?;
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
        for key in rest.iter().map(|(k, _)| k) {
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

/// Runs a backtest on the workers. A request waits for it at most the fit
/// timeout; a job (`job.job` set) runs until it ends or is cancelled, as a
/// fit job does.
pub(crate) async fn run(state: &AppState, job: BacktestJob) -> Result<BacktestResult, ApiError> {
    state
        .transport
        .ready()
        .await
        .map_err(|e| transport_error(e, "backtest"))?;
    let timeout = state.config.fit_timeout;
    let source = job.source.clone();
    let is_job = job.job.is_some();
    let backtest = state.transport.backtest(job);
    let outcome = if is_job {
        Ok(backtest.await)
    } else {
        tokio::time::timeout(timeout, backtest).await
    };
    match outcome {
        Ok(Ok(Ok(result))) => Ok(result),
        Ok(Ok(Err(JobError::Invalid(message)))) => Err(match &source {
            // The body had no series: what does not fit the windows is the
            // version's data.
            Some((model, version)) => ApiError::field(
                "model",
                format!("the data of version {version} of model '{model}': {message}"),
            ),
            None => ApiError::field("series", message),
        }),
        Ok(Ok(Err(JobError::Unavailable(reason)))) => Err(ApiError::error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the backtest is not possible now: {reason}; retry later"),
        )),
        Ok(Ok(Err(JobError::Failed(reason)))) => {
            let failed = ApiError::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the backtest failed: {reason}"),
            );
            Err(match source {
                Some((model, version)) => {
                    crate::handlers::unless_deleted(state, &model, version, failed).await
                }
                None => failed,
            })
        }
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

/// Refuses a backtest whose answer's forecasts would be over the cap of a
/// forecast answer (only asked for with `include_forecasts`).
fn check_size(
    state: &AppState,
    n_series: usize,
    options: &BacktestOptions,
) -> Result<(), ApiError> {
    if !options.include_forecasts {
        return Ok(());
    }
    state.admission.backtest_size(
        options.horizon.get(),
        options.n_windows,
        n_series,
        options.levels.len(),
        "include_forecasts",
    )
}

/// Refuses, before any work (also before a job is made of it), a series
/// too short for the windows asked: the engine's own rule, named by series.
fn check_lengths(series: &[NamedSeries], options: &BacktestOptions) -> Result<(), ApiError> {
    let mut errors = FieldErrors::new();
    for (i, s) in series.iter().enumerate() {
        if let Err(e) = engine::backtest::cutoffs(s.values.len(), options) {
            errors.insert(format!("series[{i}]"), format!("series '{}': {e}", s.id));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Fail(StatusCode::BAD_REQUEST, errors))
    }
}

/// Whether a backtest of `n_series` runs as a job: `Some(true)` when asked
/// with `Prefer: respond-async`, `Some(false)` when larger than
/// [`ASYNC_BACKTEST_FITS`], `None` to answer synchronously.
fn wants_async(headers: &HeaderMap, n_series: usize, options: &BacktestOptions) -> Option<bool> {
    if crate::jobs::prefers_async(headers) {
        return Some(true);
    }
    let windows = if options.refit { options.n_windows } else { 1 };
    let fits = (n_series as u64).saturating_mul(windows as u64);
    (fits > ASYNC_BACKTEST_FITS).then_some(false)
}

/// Records a backtest job, runs it in the background and answers `202`.
/// `model`/`version` name what it measures (the tenant's `default` model
/// and version 0 for data in the body: the job is only scoped by tenant).
async fn run_async(
    state: &AppState,
    model: &ModelName,
    version: Version,
    job: BacktestJob,
    total: usize,
    preferred: bool,
) -> Result<Response, ApiError> {
    let task_state = state.clone();
    let model_and_version = (version > 0).then(|| (model.clone(), version));
    let work = |id| async move {
        let job = BacktestJob {
            job: Some(id),
            ..job
        };
        let result = run(&task_state, job).await?;
        answer(result, model_and_version.as_ref())
    };
    let info =
        crate::jobs::spawn_own(state, KIND_BACKTEST, model, version, total as u64, work).await?;
    Ok(crate::jobs::accepted(&info, preferred))
}

/// The `data` of a backtest's answer: the result, with the model and
/// version it measured when it measured one.
fn answer(
    result: BacktestResult,
    measured: Option<&(ModelName, Version)>,
) -> Result<Value, ApiError> {
    let mut data = serde_json::to_value(&result)
        .map_err(|e| ApiError::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let (Value::Object(map), Some((model, version))) = (&mut data, measured) {
        map.insert("model".into(), json!(model.name()));
        map.insert("version".into(), json!(version));
    }
    Ok(data)
}

/// Backtests a method on the series sent (nothing is stored).
///
/// Rolling-origin forecasts, scored against the actual values.
#[utoipa::path(post, path = "/v1/backtest", tag = "backtests",
    params(("Prefer" = Option<String>, Header, description = "`respond-async` runs the backtest as a job (`202`), as does any backtest of more than 10000 fits (series × windows with `refit`).")),
    request_body = crate::openapi::BacktestDataBody,
    responses(
        (status = 200, description = "Accuracy per series and overall.", body = crate::openapi::Success<crate::openapi::BacktestAnswer>),
        (status = 202, description = "Accepted as a job: follow `Location`.", body = crate::openapi::Success<crate::jobs::JobAnswer<'static>>,
            headers(("Location" = String, description = "`/v1/jobs/{id}`"), ("Preference-Applied" = Option<String>, description = "`respond-async` when the client asked for it"))),
    ))]
pub async fn backtest_data(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<BacktestBody>,
) -> Result<Response, ApiError> {
    let n_series = body.fit.series.len();
    check_size(&state, n_series, &body.options)?;
    check_lengths(&body.fit.series, &body.options)?;
    let preferred = wants_async(&headers, n_series, &body.options);
    let job = BacktestJob {
        spec: body.fit.spec,
        series: body.fit.series,
        source: None,
        options: body.options,
        job: None,
    };
    if let Some(preferred) = preferred {
        let model = ModelName::default_model_in(&tenant);
        return run_async(&state, &model, 0, job, n_series, preferred).await;
    }
    Ok(success(answer(run(&state, job).await?, None)?))
}

/// Backtests a model on its own training series.
///
/// The current version (the newest registered, waited for) or the version
/// asked.
#[utoipa::path(post, path = "/v1/models/{name}/backtest", tag = "backtests",
    params(("name" = String, Path, description = "The model: 1 to 64 characters of `A-Z a-z 0-9 _ - .`", pattern = "^[A-Za-z0-9_.-]{1,64}$"),
        ("Prefer" = Option<String>, Header, description = "`respond-async` runs the backtest as a job (`202`), as does any backtest of more than 10000 fits (series × windows with `refit`).")),
    request_body = crate::openapi::ModelBacktestBody,
    responses(
        (status = 200, description = "Accuracy per series and overall, on the version's training data.", body = crate::openapi::Success<crate::openapi::BacktestAnswer>),
        (status = 202, description = "Accepted as a job: follow `Location`.", body = crate::openapi::Success<crate::jobs::JobAnswer<'static>>,
            headers(("Location" = String, description = "`/v1/jobs/{id}`"), ("Preference-Applied" = Option<String>, description = "`respond-async` when the client asked for it"))),
    ))]
pub async fn backtest_model(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
    headers: HeaderMap,
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
            StoreError::UnknownVersion { .. } => crate::life::no_such_version(&model, version),
            e => pending_error(e, &model, version),
        })?;
    match info.status {
        VersionStatus::Ready => {}
        // One asked for by number: the caller's choice, a 409 as for a
        // pinned forecast; the newest: the model is broken until a refit.
        VersionStatus::Failed { reason } if body.version.is_some() => {
            return Err(crate::life::pinned_failed(
                &model, version, &reason, "backtest",
            ))
        }
        VersionStatus::Failed { reason } => return Err(version_failed(&model, version, &reason)),
        VersionStatus::Pending => {
            return Err(pending_error(
                StoreError::WaitTimeout(state.config.wait_timeout),
                &model,
                version,
            ))
        }
    }
    check_size(&state, info.n_series, &body.options)?;
    let preferred = wants_async(&headers, info.n_series, &body.options);
    let job = BacktestJob {
        spec: ModelSpec::default(),
        series: vec![],
        source: Some((model.clone(), version)),
        options: body.options,
        job: None,
    };
    if let Some(preferred) = preferred {
        return run_async(&state, &model, version, job, info.n_series, preferred).await;
    }
    let result = run(&state, job).await?;
    Ok(success(answer(result, Some(&(model, version)))?))
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
