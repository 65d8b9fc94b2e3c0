//! Async fits and `/v1/jobs/{id}`.
//!
//! A fit sent with `Prefer: respond-async` (RFC 7240), or larger than
//! [`crate::GatewayConfig::async_points`] values, registers its version and a
//! job for it, answers `202 Accepted` with `Location: /v1/jobs/{id}` at once,
//! and is dispatched by a task of its own. The job's outcome is its
//! version's (see `store::jobs`), so it survives the gateway: after a
//! restart of the embedded service a job that was running ends `failed`
//! with the error "interrupted by a restart" (its version was); in
//! distributed mode its fit is in the broker and any worker finishes it.
//! `DELETE /v1/jobs/{id}` fails the version with "cancelled"; the worker
//! hears it through its progress reports and stops.
//!
//! Large backtests are jobs too (`backtest.rs`), of kind `backtest`: they
//! produce no version, so their job row keeps its own outcome (the answer
//! or the error, see `store::jobs`). The gateway that accepted one runs it
//! and records its end; a cancel records "cancelled" first, and the late
//! answer is dropped. A backtest job whose gateway died is reported failed
//! once it is older than the backtest timeout allows.

use crate::auth::Caller;
use crate::handlers::{
    dispatch, prepare_fit, store_error, with_replay_header, FitError, FitInput, Keyed, V1FitAnswer,
};
use crate::jsend::{success, ApiError};
use crate::{AppState, GatewayConfig};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::{ModelName, Tenant};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};
use store::jobs::{valid_id, CANCELLED, KIND_FIT};
use store::{JobInfo, JobStatus, Registered, VersionStatus};

/// Whether a fit runs as a job: `Some(true)` when the client asked with
/// `Prefer: respond-async` (the answer then says `Preference-Applied`),
/// `Some(false)` when it is larger than the threshold, `None` to answer
/// synchronously.
pub(crate) fn wants_async(
    config: &GatewayConfig,
    headers: &HeaderMap,
    points: u64,
) -> Option<bool> {
    if prefers_async(headers) {
        return Some(true);
    }
    (points > config.async_points).then_some(false)
}

/// Whether the request says `Prefer: respond-async` (RFC 7240).
pub(crate) fn prefers_async(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',').any(|pref| {
                pref.split(';')
                    .next()
                    .is_some_and(|token| token.trim().eq_ignore_ascii_case("respond-async"))
            })
        })
    })
}

/// `202 Accepted` for a new job: its state, `Location: /v1/jobs/{id}`, and
/// `Preference-Applied` when the client asked.
pub(crate) fn accepted(info: &JobInfo, preferred: bool) -> Response {
    let mut response = (StatusCode::ACCEPTED, success(job_answer(info, None))).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/jobs/{}", info.id)) {
        headers.insert(header::LOCATION, location);
    }
    if preferred {
        headers.insert(
            "preference-applied",
            HeaderValue::from_static("respond-async"),
        );
    }
    response
}

/// Registers the fit and its job, dispatches it in the background and
/// answers `202 Accepted`.
pub(crate) async fn fit_async(
    state: &AppState,
    model: ModelName,
    input: FitInput,
    key: Option<Keyed>,
    preferred: bool,
) -> Result<Response, ApiError> {
    let timeout = state.config.fit_timeout;
    let fail = |e: FitError, version| e.answer(&model, version, timeout);
    // Held by the job until its fit settles, like a synchronous fit's.
    let slot = state.admission.fit()?;
    let mut job = prepare_fit(state, &model, input, None)
        .await
        .map_err(|e| fail(e, None))?;
    let store = state.store.clone();
    let registered =
        crate::handlers::register(state, &model, job.n_series(), key.as_ref(), job.base())
            .await
            .map_err(|e| fail(e, None))?;
    let version = registered.version();
    job.set_version(version);
    let total = job.n_series() as u64;
    let replayed = matches!(registered, Registered::Existing(_));
    let existing = if replayed {
        store
            .job_of_version(&model, version)
            .await
            .map_err(store_error)?
    } else {
        None
    };
    let info = match existing {
        Some(info) => info,
        None => match store.create_job(KIND_FIT, &model, version, total).await {
            Ok(info) => info,
            Err(e) => {
                if !replayed {
                    let reason = format!("its job could not be recorded: {e}");
                    if let Err(e) = store.fail(&model, version, &reason).await {
                        tracing::error!(%model, version, error = %e, "could not fail a version");
                    }
                }
                return Err(store_error(e));
            }
        },
    };
    // Sent unless an earlier request with the same key sent it already.
    let send = !replayed
        || store
            .is_undispatched(&model, version)
            .await
            .map_err(store_error)?;
    if send {
        tracing::info!(%model, version, job = %info.id, n_series = total, "fit job registered");
        let transport = state.transport.clone();
        let dispatcher = store.clone();
        let mut sending = tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = dispatch(dispatcher, transport, job).await {
                tracing::info!(version, "fit job ended without a fit: {e:?}");
            }
        });
        handed_off(store.as_ref(), &model, version, &mut sending, timeout).await;
    }
    if !replayed {
        crate::life::retain(state, &model);
    }
    Ok(with_replay_header(accepted(&info, preferred), replayed))
}

/// Waits until the fit of `version` is in the transport's safe keeping (or
/// its dispatch ended), so that a `202` outlives this gateway: a job whose
/// fit died unsent with its gateway would stay queued forever, as its
/// client polls instead of retrying. Immediate for a store of one process.
async fn handed_off(
    store: &dyn store::ModelStore,
    model: &ModelName,
    version: protocol::Version,
    sending: &mut tokio::task::JoinHandle<()>,
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match store.is_undispatched(model, version).await {
            Ok(false) => return,
            Ok(true) => {}
            Err(e) => {
                tracing::warn!(%model, version, error = %e, "could not tell whether a fit job was sent");
                return;
            }
        }
        tokio::select! {
            _ = &mut *sending => return,
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(%model, version, "answering 202 before the fit job was confirmed sent");
            return;
        }
    }
}

/// How often the task of a job with its own outcome looks for a cancel.
const CANCEL_POLL: Duration = Duration::from_millis(250);

/// The jobs with their own outcome this gateway is running: such a job is
/// never taken for one whose gateway stopped (see [`find`]), however long
/// it runs.
#[derive(Default)]
pub(crate) struct RunningHere(std::sync::Mutex<std::collections::HashSet<String>>);

impl RunningHere {
    fn set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn contains(&self, id: &str) -> bool {
        self.set().contains(id)
    }
}

/// A job's place in [`RunningHere`], given up when its task ends.
struct Running {
    here: std::sync::Arc<RunningHere>,
    id: String,
}

impl Running {
    fn new(here: std::sync::Arc<RunningHere>, id: String) -> Self {
        here.set().insert(id.clone());
        Self { here, id }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.here.set().remove(&self.id);
    }
}

/// Records a job of `kind` whose outcome is its own (a backtest, a
/// TimeGPT-compatible forecast: no version holds it), runs the work `work`
/// makes of the job's id in a task of its own and records its answer or
/// error in the job's row. The task stops waiting once the job is
/// cancelled: the first finish wins in the store, so a late answer is
/// dropped (a worker given the id stops too). `model`/`version` name what
/// the job measures (the tenant's `default` model and version 0 when
/// nothing).
pub(crate) async fn spawn_own<W, F>(
    state: &AppState,
    kind: &str,
    model: &ModelName,
    version: protocol::Version,
    total: u64,
    work: W,
) -> Result<JobInfo, ApiError>
where
    W: FnOnce(String) -> F,
    F: std::future::Future<Output = Result<Value, ApiError>> + Send + 'static,
{
    let store = state.store.clone();
    let info = store
        .create_job(kind, model, version, total)
        .await
        .map_err(store_error)?;
    tracing::info!(%model, version, job = %info.id, kind, total, "job registered");
    let id = info.id.clone();
    let work = work(id.clone());
    let running = Running::new(state.running_here.clone(), id.clone());
    tokio::spawn(async move {
        let _running = running;
        if let Err(e) = store.job_progress(&id, 0, total).await {
            tracing::warn!(job = %id, error = %e, "could not mark a job running");
        }
        tokio::pin!(work);
        let outcome = loop {
            tokio::select! {
                outcome = &mut work => break Some(outcome),
                _ = tokio::time::sleep(CANCEL_POLL) => {
                    if let Ok(Some(j)) = store.job(&id).await {
                        if j.status == JobStatus::Cancelled {
                            break None;
                        }
                    }
                }
            }
        };
        let Some(outcome) = outcome else {
            tracing::info!(job = %id, "job cancelled while it ran");
            return;
        };
        let recorded = match outcome {
            Ok(value) => store.finish_job(&id, Ok(&value.to_string())).await,
            Err(e) => store.finish_job(&id, Err(&error_text(&e))).await,
        };
        match recorded {
            Ok(true) => tracing::info!(job = %id, "job finished"),
            Ok(false) => tracing::info!(job = %id, "job had already ended (cancelled)"),
            Err(e) => tracing::error!(job = %id, error = %e, "could not record a job's end"),
        }
    });
    Ok(info)
}

/// The text of an error, for a job's `error`.
pub(crate) fn error_text(e: &ApiError) -> String {
    match e {
        ApiError::Fail(_, errors) => errors
            .iter()
            .map(|(field, m)| format!("{field}: {m}"))
            .collect::<Vec<_>>()
            .join("; "),
        ApiError::Error { message, .. } => message.clone(),
        ApiError::RetryAfter(inner, _) => error_text(inner),
    }
}

/// A job: its status, progress and, once finished, its answer or error.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job's id (from the `Location` of a `202`): 32 hexadecimal digits.")),
    responses((status = 200, description = "The job: its status, progress, times, and its answer (`result`) or `error` once finished.", body = crate::openapi::Success<JobAnswer<'static>>)))]
pub async fn get_job(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let info = find(&state, &tenant, &id).await?;
    // Kept as JSON text, not a `Value` tree: a fit of a million series
    // answers with a million entries, and a tree would take several times
    // their text in memory.
    let result = if info.status != JobStatus::Succeeded {
        None
    } else if info.kind != KIND_FIT {
        // Its own answer, kept as JSON by the store.
        info.result
            .as_deref()
            .and_then(|text| RawValue::from_string(text.to_string()).ok())
    } else {
        // The fit's answer, from its version.
        match state
            .store
            .wait_settled(&info.model, info.version, Duration::ZERO)
            .await
        {
            Ok(v) if v.status == VersionStatus::Ready => v.summary.and_then(|summary| {
                serde_json::to_string(&V1FitAnswer {
                    model: summary.model,
                    version: summary.version,
                    status: "ready",
                    method: summary.method,
                    series: summary.series,
                })
                .ok()
                .and_then(|text| RawValue::from_string(text).ok())
            }),
            _ => None,
        }
    };
    Ok(success(job_answer(&info, result)))
}

/// Cancels a job that has not finished.
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job's id: 32 hexadecimal digits.")),
    responses((status = 200, description = "The job, now `cancelled` (a fit's version is `failed` with reason \"cancelled\"). A finished job answers 409 (`fail`).", body = crate::openapi::Success<JobAnswer<'static>>)))]
pub async fn cancel_job(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let info = cancel(&state, &tenant, &id).await?;
    Ok(success(job_answer(&info, None)))
}

/// Cancels `tenant`'s job `id` unless it has finished (409); the job as it
/// is afterwards.
pub(crate) async fn cancel(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
) -> Result<JobInfo, ApiError> {
    let info = find(state, tenant, id).await?;
    if info.status.is_finished() {
        return Err(ApiError::fail(
            StatusCode::CONFLICT,
            "id",
            format!(
                "job {id} has already finished ({}); only a queued or running job can be cancelled",
                info.status.as_str()
            ),
        )
        .with_data(json!(job_answer(&info, None))));
    }
    // First wins: work that finished just before keeps its outcome.
    if info.kind == KIND_FIT {
        state
            .store
            .fail(&info.model, info.version, CANCELLED)
            .await
            .map_err(store_error)?;
    } else {
        state
            .store
            .finish_job(id, Err(CANCELLED))
            .await
            .map_err(store_error)?;
    }
    tracing::info!(model = %info.model, version = info.version, job = %id, kind = %info.kind, "job cancelled");
    find(state, tenant, id).await
}

/// The job `id` of `tenant`'s models; another tenant's job is as unknown
/// as a missing one.
pub(crate) async fn find(state: &AppState, tenant: &Tenant, id: &str) -> Result<JobInfo, ApiError> {
    let unknown = || ApiError::fail(StatusCode::NOT_FOUND, "id", format!("no job '{id}'"));
    if !valid_id(id) {
        return Err(unknown());
    }
    let info = state
        .store
        .job(id)
        .await
        .map_err(store_error)?
        .filter(|info| info.model.tenant() == *tenant)
        .ok_or_else(unknown)?;
    // A job with its own outcome (a backtest, a TimeGPT job) is run by the
    // gateway that accepted it. One that this gateway is not running, still
    // unfinished well after the fit timeout, lost its gateway (distributed
    // mode; an embedded restart ends it at once).
    let overdue = state.config.fit_timeout + ABANDONED_AFTER;
    let age = SystemTime::now()
        .duration_since(info.created_at)
        .unwrap_or_default();
    if info.kind != KIND_FIT
        && !info.status.is_finished()
        && age > overdue
        && !state.running_here.contains(id)
    {
        state
            .store
            .finish_job(id, Err(ABANDONED))
            .await
            .map_err(store_error)?;
        return state
            .store
            .job(id)
            .await
            .map_err(store_error)?
            .ok_or_else(unknown);
    }
    Ok(info)
}

/// Beyond the fit timeout, how long an unfinished job with its own outcome
/// may wait for its gateway to record its end.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// The error of a job with its own outcome whose gateway stopped before it ended.
const ABANDONED: &str = "the gateway running this job stopped before it ended; send it again";

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub(crate) fn job_answer(info: &JobInfo, result: Option<Box<RawValue>>) -> JobAnswer<'_> {
    // A backtest of data in the body measures no model (version 0).
    let of_model = info.kind == KIND_FIT || info.version > 0;
    JobAnswer {
        id: &info.id,
        kind: &info.kind,
        model: of_model.then(|| info.model.name()),
        version: of_model.then_some(info.version),
        status: info.status.as_str(),
        progress: Progress {
            done: info.done,
            total: info.total,
        },
        created_at: rfc3339(info.created_at),
        started_at: info.started_at.map(rfc3339),
        finished_at: info.finished_at.map(rfc3339),
        result,
        error: info.error.as_deref(),
    }
}

/// A job: `GET /v1/jobs/{id}` and the `202 Accepted` of a fit or backtest.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "6f1c0b7e2a9d4c3b8e5f7a1d2c3b4a59", "kind": "fit", "model": "shop", "version": 2, "status": "running", "progress": {"done": 1, "total": 2}, "created_at": "2026-11-30T01:10:00.000Z", "started_at": "2026-11-30T01:10:00.010Z"}))]
pub(crate) struct JobAnswer<'a> {
    /// 32 hexadecimal digits; `GET /v1/jobs/{id}`.
    id: &'a str,
    /// `fit`, `backtest`, or a TimeGPT-compatible job (`timegpt_forecast`, `timegpt_cross_validation`).
    #[schema(value_type = crate::openapi::JobKind)]
    kind: &'a str,
    /// The model the job fits or measures (absent for a backtest of data sent in the body).
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    /// The version the fit registered, or the version a model's backtest measures.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<protocol::Version>,
    #[schema(value_type = crate::openapi::JobStatusName)]
    status: &'static str,
    progress: Progress,
    #[schema(example = "2026-11-30T01:10:00.000Z")]
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    /// Once succeeded: the answer the synchronous request would have given
    /// (a fit's or a backtest's `data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::openapi::JobResult>)]
    result: Option<Box<RawValue>>,
    /// Why the job failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// How far a job is.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Progress {
    /// Series done so far (a backtest counts them once it ends).
    done: u64,
    /// Series in the job.
    total: u64,
}
