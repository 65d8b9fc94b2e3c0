//! `POST /v1/models/{name}/observations`: new values for the series of the
//! model's current version, appended by id, make a new version whose states
//! are filtered forward with the same parameters (no refit). It is
//! registered pending, then ready, like a fit (the consistency rule holds:
//! a forecast after this answer uses the new version).

use crate::backtest::latest;
use crate::body::{KeyedBody, ModelPath};
use crate::handlers::{fit_from, keyed, pending_error, version_failed, Base};
use crate::jsend::{success, ApiError, FieldErrors};
use crate::validate::{observation, FitRequest, FromJson, Scalar, MAX_SERIES_PER_FIT};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use engine::{ModelSpec, SeriesData, MAX_HORIZON};
use protocol::calendar::{label_after, Label, Timestamp};
use protocol::NamedSeries;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use store::{StoreError, VersionStatus};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBody {
    series: Vec<RawSeries>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeries {
    id: String,
    /// Read element by element, so that a bad one is named as in a fit.
    values: Vec<Scalar>,
    #[serde(default)]
    ds: Option<Vec<serde_json::Value>>,
}

/// One series' new values, and their timestamps (or integer positions)
/// when the client gave them.
#[derive(Debug)]
pub struct Observed {
    pub id: String,
    pub values: SeriesData,
    pub ds: Option<Vec<Label>>,
}

/// One element of an observation's `ds`: an ISO 8601 timestamp, or the
/// integer position of a series fitted on integer `ds`.
fn label(item: &serde_json::Value) -> Result<Label, String> {
    match item {
        serde_json::Value::String(text) => Timestamp::parse(text)
            .map(Label::Time)
            .map_err(|e| e.to_string()),
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().and_then(crate::validate::whole_number))
            .map(Label::Position)
            .ok_or_else(|| format!("{n} is not an integer position (nor an ISO 8601 date string)")),
        other => Err(format!(
            "{other} is neither an ISO 8601 date string nor an integer position"
        )),
    }
}

/// `{"series": [{"id", "values", "ds"?}]}`.
#[derive(Debug)]
pub struct ObservationsBody(pub Vec<Observed>);

impl FromJson for ObservationsBody {
    fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let raw: RawBody = serde_json::from_slice(body).map_err(|e| {
            ApiError::field(
                "body",
                format!(
                    "{}; expected {{\"series\": [{{\"id\", \"values\", \"ds\"?}}]}}",
                    crate::validate::json_error_message(&e)
                ),
            )
        })?;
        if raw.series.is_empty() || raw.series.len() > MAX_SERIES_PER_FIT {
            return Err(ApiError::field(
                "series",
                format!("must hold 1 to {MAX_SERIES_PER_FIT} series"),
            ));
        }
        let mut errors = FieldErrors::new();
        let mut out = Vec::with_capacity(raw.series.len());
        let mut seen = std::collections::HashSet::new();
        for (i, s) in raw.series.into_iter().enumerate() {
            if !seen.insert(s.id.clone()) {
                errors.insert(
                    format!("series[{i}].id"),
                    format!("series id '{}' appears more than once", s.id),
                );
                continue;
            }
            let numbers: Result<Vec<Option<f64>>, String> = s
                .values
                .into_iter()
                .enumerate()
                .map(|(k, v)| observation(v).map_err(|e| format!("element {k} {e}")))
                .collect();
            let values =
                match numbers.and_then(|n| SeriesData::appended(n).map_err(|e| e.to_string())) {
                    Ok(v) => v,
                    Err(e) => {
                        errors.insert(format!("series[{i}].values"), e);
                        continue;
                    }
                };
            let ds = match s.ds {
                None => None,
                Some(ds) if ds.len() != values.len() => {
                    errors.insert(
                        format!("series[{i}].ds"),
                        format!("has {} timestamps for {} values", ds.len(), values.len()),
                    );
                    continue;
                }
                Some(ds) => match ds.iter().map(label).collect() {
                    Ok(ds) => Some(ds),
                    Err(e) => {
                        errors.insert(format!("series[{i}].ds"), e);
                        continue;
                    }
                },
            };
            out.push(Observed {
                id: s.id,
                values,
                ds,
            });
        }
        if errors.is_empty() {
            Ok(Self(out))
        } else {
            Err(ApiError::Fail(StatusCode::BAD_REQUEST, errors))
        }
    }
}

/// New observations: a new version filtered forward, without a refit.
#[utoipa::path(post, path = "/v1/models/{name}/observations", tag = "models",
    params(("name" = String, Path, description = "The model: 1 to 64 characters of `A-Z a-z 0-9 _ - .`", pattern = "^[A-Za-z0-9_.-]{1,64}$"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the request idempotent, as for a fit. 1 to 128 visible ASCII characters.")),
    request_body = crate::openapi::ObservationsBody,
    responses((status = 200, description = "The new version (`base_version`: the one it extends), ready; forecasts use it from now on.", body = crate::openapi::Success<crate::openapi::ObservationsAnswer>)))]
pub async fn observations(
    State(state): State<AppState>,
    ModelPath(model): ModelPath,
    headers: HeaderMap,
    body: KeyedBody<ObservationsBody>,
) -> Result<Response, ApiError> {
    let key = keyed(&headers, body.digest)?;
    let ObservationsBody(observed) = body.body;
    // Until this version is made: the next observations extend it.
    let _turn = state.appends.take(&model).await;
    let base = latest(&state, &model).await?;
    let info = state
        .store
        .wait_settled(&model, base, state.config.wait_timeout)
        .await
        .map_err(|e| pending_error(e, &model, base))?;
    let summary = match (info.status, info.summary) {
        (VersionStatus::Ready, Some(summary)) => summary,
        (VersionStatus::Failed { reason }, _) => return Err(version_failed(&model, base, &reason)),
        (VersionStatus::Ready, None) => {
            return Err(ApiError::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("version {base} of model '{model}' is ready but its summary is missing"),
            ))
        }
        (VersionStatus::Pending, _) => {
            return Err(pending_error(
                StoreError::WaitTimeout(state.config.wait_timeout),
                &model,
                base,
            ))
        }
    };
    // Timestamps (or positions), where the series has a time axis, must be
    // the steps that follow its last one.
    let axes: HashMap<&str, _> = summary
        .series
        .iter()
        .map(|s| (s.id.as_str(), (s.calendar, s.index, s.n_obs, s.n_missing)))
        .collect();
    let mut errors = FieldErrors::new();
    for (i, o) in observed.iter().enumerate() {
        let Some(&(calendar, index, n_obs, n_missing)) = axes.get(o.id.as_str()) else {
            errors.insert(
                format!("series[{i}].id"),
                format!(
                    "unknown series id '{}': version {base} of model '{model}' has no such series",
                    o.id
                ),
            );
            continue;
        };
        // The rule on missing values is the whole series'.
        let len = n_obs + o.values.len();
        let missing = n_missing + o.values.n_missing();
        if let Err(e) = SeriesData::missing_allowed(missing, len) {
            errors.insert(
                format!("series[{i}].values"),
                format!("series '{}' with these values: {e}", o.id),
            );
            continue;
        }
        if let (None, Some(axis)) = (calendar, index) {
            // Forecasts must still be able to number their steps.
            let room = o.values.len() as i64 + MAX_HORIZON as i64;
            if axis.checked_position(room).is_none() {
                errors.insert(
                    format!("series[{i}].values"),
                    format!(
                        "{} more values and {MAX_HORIZON} forecast steps after them would pass \
                         the largest integer position ({}): series '{}' ends at {}",
                        o.values.len(),
                        i64::MAX,
                        o.id,
                        axis.last
                    ),
                );
                continue;
            }
        }
        let Some(ds) = &o.ds else { continue };
        if calendar.is_none() && index.is_none() {
            errors.insert(
                format!("series[{i}].ds"),
                format!(
                    "series '{}' was fitted without timestamps or integer positions",
                    o.id
                ),
            );
            continue;
        }
        let what = if calendar.is_some() {
            "timestamp"
        } else {
            "position"
        };
        let last = label_after(calendar, index, 0).map_or(String::new(), |l| l.to_string());
        for (k, t) in ds.iter().enumerate() {
            let expected = label_after(calendar, index, k as i64 + 1);
            if !expected.is_some_and(|e| e.same_as(t)) {
                errors.insert(
                    format!("series[{i}].ds[{k}]"),
                    format!(
                        "expected {} (the series' step {} after its last {what} {last}), got {t}",
                        expected.map_or("a valid timestamp".to_string(), |e| e.to_string()),
                        k + 1,
                    ),
                );
                break;
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Fail(StatusCode::BAD_REQUEST, errors));
    }
    let request = FitRequest {
        spec: ModelSpec::default(),
        series: observed
            .into_iter()
            .map(|o| NamedSeries {
                id: o.id,
                values: o.values,
                calendar: None,
                index: None,
            })
            .collect(),
    };
    let extends = Base {
        version: base,
        n_series: info.n_series,
    };
    let answer = fit_from(&state, model.clone(), request, key, Some(extends))
        .await
        .unless_base_deleted(&state, &model, base)
        .await;
    Ok(answer.respond(|summary| {
        success(json!({
            "model": summary.model.name(),
            "version": summary.version,
            // A replay answers with the base of the request it repeats.
            "base_version": summary.base.unwrap_or(base),
            "status": "ready",
            "method": summary.method,
            "series": summary.series,
        }))
    }))
}
