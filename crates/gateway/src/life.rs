//! The life of a model: rollback, delete, retention, and the answers for a
//! pinned version (`"version": N` in a forecast).
//!
//! Rollback registers a NEW version holding a copy of version N's fitted
//! state and summary: version numbers only grow, the newest version is
//! still the one forecasts use (the consistency rule needs no exception),
//! and retention or a delete of N cannot break the rollback.
//!
//! Deletes: `DELETE /v1/models/{name}` removes every version and job of the
//! model (a fit in flight is discarded; fitted again, the model continues
//! its numbers). `DELETE /v1/models/{name}/versions/{v}` removes one settled
//! version that is not the newest: the newest is what forecasts use, so it
//! goes only by a newer fit or rollback, or with the whole model.

use crate::body::{JsonBody, ModelPath, VersionPath};
use crate::handlers::{pending_error, status_name, store_error, V1FitAnswer};
use crate::jsend::{success, ApiError};
use crate::validate::FromJson;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use protocol::{ModelName, Version};
use serde_json::json;
use std::time::Duration;
use store::{Registered, StoreError, VersionStatus};

/// Prunes `model` to the configured number of versions, in the background.
pub(crate) fn retain(state: &AppState, model: &ModelName) {
    let (store, model, keep, grace) = (
        state.store.clone(),
        model.clone(),
        state.config.keep_versions,
        state.config.prune_grace,
    );
    tokio::spawn(async move {
        match store.prune(&model, keep, grace).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(%model, versions = n, keep, "pruned old versions"),
            Err(e) => tracing::warn!(%model, error = %e, "could not prune old versions"),
        }
    });
}

pub(crate) fn no_such_version(model: &ModelName, version: Version) -> ApiError {
    ApiError::fail(
        StatusCode::NOT_FOUND,
        "version",
        format!("model '{model}' has no version {version}; GET /v1/models/{model} lists them"),
    )
}

/// A version asked for by number that failed: a 409 saying it has
/// nothing to `use_for` ("forecast", "backtest").
pub(crate) fn pinned_failed(
    model: &ModelName,
    version: Version,
    reason: &str,
    use_for: &str,
) -> ApiError {
    ApiError::fail(
        StatusCode::CONFLICT,
        "version",
        format!(
            "version {version} of model '{model}' failed ({reason}); it has nothing to {use_for}"
        ),
    )
}

fn unknown_model(model: &ModelName) -> ApiError {
    ApiError::fail(
        StatusCode::NOT_FOUND,
        "name",
        format!("model '{model}' does not exist"),
    )
}

/// `POST /v1/models/{name}/rollback` body: `{"version": N}`.
#[derive(Debug)]
pub struct Rollback {
    version: Version,
}

impl FromJson for Rollback {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        crate::validate::version_body(body).map(|version| Self { version })
    }
}

/// Copies the `count` shards of version `from` to the pending version `to`,
/// one at a time (a sharded version is large); the last one makes it ready.
async fn copy_shards(
    state: &AppState,
    model: &ModelName,
    from: Version,
    to: Version,
    count: u32,
) -> Result<(), StoreError> {
    for index in 0..count {
        let bytes = state.store.load_shard(model, from, index).await?;
        let part = state.store.shard_summary(model, from, index).await?;
        let part = protocol::FitSummary {
            version: to,
            ..part
        };
        let shard = protocol::shard::Shard { index, count };
        state
            .store
            .complete_shard(model, to, shard, &bytes, &part)
            .await?;
    }
    Ok(())
}

/// Makes a ready version current again, as a new version.
#[utoipa::path(post, path = "/v1/models/{name}/rollback", tag = "models",
    params(("name" = String, Path, description = "The model: 1 to 64 characters of `A-Z a-z 0-9 _ - .`", pattern = "^[A-Za-z0-9_.-]{1,64}$")),
    request_body = crate::openapi::RollbackBody,
    responses((status = 201, description = "The new version, a copy of version N's fitted state (`rollback_of`: N); forecasts use it from now on. 404 (`fail`) for an unknown model or version, 409 for a failed one.", body = crate::openapi::Success<crate::openapi::RollbackAnswer>)))]
pub async fn rollback(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
    JsonBody(Rollback { version: target }): JsonBody<Rollback>,
) -> Result<Response, ApiError> {
    if state
        .store
        .latest_version(&model)
        .await
        .map_err(store_error)?
        .is_none()
    {
        return Err(unknown_model(&model));
    }
    let info = state
        .store
        .wait_settled(&model, target, state.config.wait_timeout)
        .await
        .map_err(|e| match e {
            StoreError::UnknownVersion { .. } => no_such_version(&model, target),
            e => pending_error(e, &model, target),
        })?;
    let summary = match (&info.status, info.summary) {
        (VersionStatus::Ready, Some(summary)) => summary,
        (VersionStatus::Failed { reason }, _) => {
            return Err(ApiError::fail(
                StatusCode::CONFLICT,
                "version",
                format!("version {target} of model '{model}' failed ({reason}); roll back to a ready version"),
            ))
        }
        _ => {
            return Err(ApiError::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("version {target} of model '{model}' is ready but its summary is missing"),
            ))
        }
    };
    let shards = state
        .store
        .shard_count(&model, target)
        .await
        .map_err(store_error)?;
    // Read before registering: a version deleted meanwhile registers nothing.
    let whole = match shards {
        1 => Some(
            state
                .store
                .load_state(&model, target)
                .await
                .map_err(|e| match e {
                    StoreError::UnknownVersion { .. } => no_such_version(&model, target),
                    e => store_error(e),
                })?,
        ),
        _ => None,
    };
    let registered = crate::handlers::register(&state, &model, info.n_series, None, None)
        .await
        .map_err(|e| e.answer(&model, None, state.config.fit_timeout))?;
    let Registered::New(version) = registered else {
        return Err(ApiError::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "a rollback registered no new version",
        ));
    };
    let summary = protocol::FitSummary { version, ..summary };
    let copied = match whole {
        Some(bytes) => {
            state
                .store
                .complete(&model, version, &bytes, &summary)
                .await
        }
        None => copy_shards(&state, &model, target, version, shards).await,
    };
    if let Err(e) = copied {
        let reason = format!("the rollback to version {target} could not be saved: {e}");
        if let Err(e) = state.store.fail(&model, version, &reason).await {
            tracing::error!(%model, version, error = %e, "could not fail a version");
        }
        return Err(store_error(e));
    }
    tracing::info!(%model, version, rollback_of = target, "rolled back");
    retain(&state, &model);
    let mut data = json!(V1FitAnswer {
        model: summary.model,
        version,
        status: "ready",
        method: summary.method,
        series: summary.series,
    });
    data["rollback_of"] = json!(target);
    Ok((StatusCode::CREATED, success(data)).into_response())
}

/// Deletes a model: all its versions and jobs.
#[utoipa::path(delete, path = "/v1/models/{name}", tag = "models",
    params(("name" = String, Path, description = "The model: 1 to 64 characters of `A-Z a-z 0-9 _ - .`", pattern = "^[A-Za-z0-9_.-]{1,64}$")),
    responses((status = 200, description = "Every version and job of the model is gone; fitted again, it continues its version numbers. 404 (`fail`) for an unknown model.", body = crate::openapi::Success<crate::openapi::DeletedModel>)))]
pub async fn delete_model(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
) -> Result<Response, ApiError> {
    if !state
        .store
        .delete_model(&model)
        .await
        .map_err(store_error)?
    {
        return Err(unknown_model(&model));
    }
    tracing::info!(%model, "model deleted");
    Ok(success(json!({ "name": model.name(), "deleted": true })))
}

/// Deletes one settled version of a model that is not its newest.
#[utoipa::path(delete, path = "/v1/models/{name}/versions/{version}", tag = "models",
    params(("name" = String, Path, description = "The model: 1 to 64 characters of `A-Z a-z 0-9 _ - .`", pattern = "^[A-Za-z0-9_.-]{1,64}$"), ("version" = i64, Path, description = "A settled version that is not the newest (409 otherwise; 404 if there is none).", minimum = 1)),
    responses((status = 200, description = "The version is gone.", body = crate::openapi::Success<crate::openapi::DeletedVersion>)))]
pub async fn delete_version(
    State(state): State<AppState>,
    VersionPath(model, version): VersionPath,
) -> Result<Response, ApiError> {
    let version: Version = match version.parse() {
        Ok(v) if v >= 1 => v,
        _ => {
            return Err(ApiError::field(
                "version",
                "must be a version number (1 or more)",
            ))
        }
    };
    let Some(latest) = state
        .store
        .latest_version(&model)
        .await
        .map_err(store_error)?
    else {
        return Err(unknown_model(&model));
    };
    if version == latest {
        return Err(ApiError::fail(
            StatusCode::CONFLICT,
            "version",
            format!(
                "version {version} is the newest of model '{model}', the one forecasts use; \
                 fit or roll back to make a newer one first, or DELETE /v1/models/{model}"
            ),
        ));
    }
    let info = match state
        .store
        .wait_settled(&model, version, Duration::ZERO)
        .await
    {
        Ok(info) => info,
        Err(StoreError::UnknownVersion { .. }) => return Err(no_such_version(&model, version)),
        Err(StoreError::WaitTimeout(_)) => {
            return Err(ApiError::fail(
                StatusCode::CONFLICT,
                "version",
                format!(
                    "version {version} of model '{model}' is still pending; cancel its job or wait"
                ),
            ))
        }
        Err(e) => return Err(store_error(e)),
    };
    if !state
        .store
        .delete_version(&model, version)
        .await
        .map_err(store_error)?
    {
        return Err(no_such_version(&model, version));
    }
    tracing::info!(%model, version, "version deleted");
    Ok(success(json!({
        "name": model.name(),
        "version": version,
        "status": status_name(&info.status),
        "deleted": true,
    })))
}
