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

use crate::auth::Caller;
use crate::handlers::{
    dispatch, prepare_fit, store_error, with_replay_header, FitError, Keyed, V1FitAnswer,
};
use crate::jsend::{success, ApiError};
use crate::validate::FitRequest;
use crate::{AppState, GatewayConfig};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::{ModelName, Tenant};
use serde::Serialize;
use serde_json::json;
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
    request: &FitRequest,
) -> Option<bool> {
    let preferred = headers.get_all("prefer").iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',').any(|pref| {
                pref.split(';')
                    .next()
                    .is_some_and(|token| token.trim().eq_ignore_ascii_case("respond-async"))
            })
        })
    });
    if preferred {
        return Some(true);
    }
    let points: u64 = request.series.iter().map(|s| s.values.len() as u64).sum();
    (points > config.async_points).then_some(false)
}

/// Registers the fit and its job, dispatches it in the background and
/// answers `202 Accepted`.
pub(crate) async fn fit_async(
    state: &AppState,
    model: ModelName,
    request: FitRequest,
    key: Option<Keyed>,
    preferred: bool,
) -> Result<Response, ApiError> {
    let timeout = state.config.fit_timeout;
    let fail = |e: FitError, version| e.answer(&model, version, timeout);
    // Held by the job until its fit settles, like a synchronous fit's.
    let slot = state.admission.fit()?;
    let mut job = prepare_fit(state, &model, request, None)
        .await
        .map_err(|e| fail(e, None))?;
    let store = state.store.clone();
    let registered =
        crate::handlers::register(store.as_ref(), &model, job.n_series(), key.as_ref())
            .await
            .map_err(store_error)?;
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
    let mut response = (StatusCode::ACCEPTED, success(job_answer(&info, None))).into_response();
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
    Ok(with_replay_header(response, replayed))
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

/// `GET /v1/jobs/{id}`.
pub async fn get_job(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let info = find(&state, &tenant, &id).await?;
    let result = if info.status == JobStatus::Succeeded {
        // The fit's answer, from its version.
        match state
            .store
            .wait_settled(&info.model, info.version, Duration::ZERO)
            .await
        {
            Ok(v) if v.status == VersionStatus::Ready => v.summary.map(|summary| V1FitAnswer {
                model: summary.model,
                version: summary.version,
                status: "ready",
                method: summary.method,
                series: summary.series,
            }),
            _ => None,
        }
    } else {
        None
    };
    Ok(success(job_answer(&info, result)))
}

/// `DELETE /v1/jobs/{id}`: cancels a job that has not finished.
pub async fn cancel_job(
    State(state): State<AppState>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let info = find(&state, &tenant, &id).await?;
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
    // First wins: a fit that finished just before stays ready.
    state
        .store
        .fail(&info.model, info.version, CANCELLED)
        .await
        .map_err(store_error)?;
    tracing::info!(model = %info.model, version = info.version, job = %id, "job cancelled");
    let info = find(&state, &tenant, &id).await?;
    Ok(success(job_answer(&info, None)))
}

/// The job `id` of `tenant`'s models; another tenant's job is as unknown
/// as a missing one.
async fn find(state: &AppState, tenant: &Tenant, id: &str) -> Result<JobInfo, ApiError> {
    let unknown = || ApiError::fail(StatusCode::NOT_FOUND, "id", format!("no job '{id}'"));
    if !valid_id(id) {
        return Err(unknown());
    }
    state
        .store
        .job(id)
        .await
        .map_err(store_error)?
        .filter(|info| info.model.tenant() == *tenant)
        .ok_or_else(unknown)
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn job_answer(info: &JobInfo, result: Option<V1FitAnswer>) -> JobAnswer<'_> {
    JobAnswer {
        id: &info.id,
        kind: &info.kind,
        model: &info.model,
        version: info.version,
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

#[derive(Serialize)]
struct JobAnswer<'a> {
    id: &'a str,
    kind: &'a str,
    #[serde(serialize_with = "ModelName::serialize_name")]
    model: &'a ModelName,
    version: protocol::Version,
    status: &'static str,
    progress: Progress,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    /// The fit's answer, once succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<V1FitAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct Progress {
    /// Series fitted so far.
    done: u64,
    total: u64,
}
