//! TimeGPT-compatible endpoints, so that Nixtla's unmodified `nixtla`
//! Python client (`NixtlaClient(base_url=..., api_key=...)`) forecasts and
//! cross-validates with Horizon's engine.
//!
//! What the client sends and expects (read from its source):
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
//! picks that method. `GET /v2/models` lists them. `freq` proposes the season lengths
//! (`protocol::calendar`). Nothing is stored: these endpoints fit and
//! forecast on the gateway's blocking pool, across its cores.

use crate::jsend::{success, ApiError, FieldErrors};
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::backtest::{backtest, BacktestError, BacktestOptions};
use engine::{Horizon, Level, Method, ModelSpec, SeriesData};
use protocol::calendar::Freq;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

/// Largest decompressed body accepted (the client refuses above 200 MiB itself).
const MAX_DECOMPRESSED: u64 = 256 * 1024 * 1024;

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

/// `GET /validate_api_key`: keys are not checked here (put an auth proxy in
/// front); the client only looks at the status.
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
}

/// A payload checked and turned into engine inputs.
struct Request {
    series: Vec<Vec<f64>>,
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

/// `POST /v2/forecast`.
pub async fn forecast(headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let payload = parse(&headers, body).await?;
    let request = check(&payload)?;
    let answer = blocking(move || forecast_all(&request)).await??;
    Ok(success(answer))
}

/// `POST /v2/cross_validation`.
pub async fn cross_validation(headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let payload = parse(&headers, body).await?;
    let request = check(&payload)?;
    let h = request.horizon.get();
    let n_windows = positive(payload.n_windows.unwrap_or(1), "n_windows")?;
    let step = positive(payload.step_size.unwrap_or(h as i64), "step_size")?;
    // Nixtla's `refit` is about fine-tuning; here it picks refitting at every
    // origin (its default) or filtering the first fit forward.
    let refit = payload.refit.unwrap_or(true);
    let answer = blocking(move || cross_validate(&request, n_windows, step, refit)).await??;
    Ok(success(answer))
}

fn positive(value: i64, field: &str) -> Result<usize, ApiError> {
    usize::try_from(value)
        .ok()
        .filter(|&v| v >= 1)
        .ok_or_else(|| ApiError::field(field, format!("must be an integer ≥ 1, got {value}")))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|_| {
        tracing::error!("a TimeGPT-compatible request panicked");
        ApiError::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error while forecasting",
        )
    })
}

/// The body, decompressed when the client sent it as zstd, parsed.
async fn parse(headers: &HeaderMap, body: Bytes) -> Result<Payload, ApiError> {
    let zstd = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("zstd"));
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
    let bad = |e: String| ApiError::field("body", format!("bad zstd body: {e}"));
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
            format!("fine-tuned models {unsupported}"),
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
    let levels: Vec<Level> = p
        .level
        .iter()
        .flatten()
        .filter_map(|&l| match Level::parse(l) {
            Ok(level) => Some(level),
            Err(e) => {
                errors.insert("level".into(), e.to_string());
                None
            }
        })
        .collect();
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
    let mut series = Vec::with_capacity(p.series.sizes.len());
    if total == p.series.y.len() {
        let mut start = 0;
        for (i, &size) in p.series.sizes.iter().enumerate() {
            let values: Option<Vec<f64>> =
                p.series.y[start..start + size].iter().copied().collect();
            start += size;
            match values {
                Some(v) if !v.is_empty() => series.push(v),
                Some(_) => {
                    errors
                        .entry("series.y".into())
                        .or_insert(format!("series {i} is empty"));
                }
                None => {
                    errors
                        .entry("series.y".into())
                        .or_insert(format!("series {i} has missing values (null or NaN)"));
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

/// Fits `values` and forecasts `h` steps; a fit the engine refuses is the
/// client's fault (e.g. a series too short), named by its position.
fn fit_forecast(
    spec: &ModelSpec,
    values: &[f64],
    horizon: Horizon,
    levels: &[Level],
    what: impl Fn() -> String,
) -> Result<engine::Forecast, ApiError> {
    let data = SeriesData::parse(values.to_vec())
        .map_err(|e| ApiError::field("series.y", format!("{}: {e}", what())))?;
    let fitted = spec
        .fit(&data)
        .map_err(|e| ApiError::field("series.y", format!("{}: {e}", what())))?;
    Ok(fitted.forecast(horizon, levels))
}

/// Intervals in the client's layout: `lo-80`/`hi-80` keys of flat arrays.
fn interval_columns(
    levels: &[Level],
    forecasts: &[engine::Forecast],
) -> Option<BTreeMap<String, Vec<f64>>> {
    if levels.is_empty() {
        return None;
    }
    let mut out = BTreeMap::new();
    for level in levels {
        let name = level_name(level.percent());
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for f in forecasts {
            if let Some(band) = f.intervals.iter().find(|b| b.level == level.percent()) {
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

fn forecast_all(r: &Request) -> Result<ForecastAnswer, ApiError> {
    let forecasts = r
        .series
        .par_iter()
        .enumerate()
        .map(|(i, values)| {
            fit_forecast(&r.spec, values, r.horizon, &r.levels, || {
                format!("series {i}")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ForecastAnswer {
        mean: forecasts
            .iter()
            .flat_map(|f| f.mean.iter().copied())
            .collect(),
        intervals: interval_columns(&r.levels, &forecasts),
        weights_x: None,
        feature_contributions: None,
    })
}

/// The engine's rolling-origin backtest (`engine::backtest`), its windows
/// laid out as the client reads them: `idxs` of the forecast steps in the
/// sent `y`, `n_windows * h` rows per series.
fn cross_validate(
    r: &Request,
    n_windows: usize,
    step_size: usize,
    refit: bool,
) -> Result<CrossValidationAnswer, ApiError> {
    let h = r.horizon.get();
    let opts = BacktestOptions {
        horizon: r.horizon,
        n_windows,
        step_size,
        refit,
        levels: r.levels.clone(),
        include_forecasts: true,
    };
    let per_series = r
        .series
        .par_iter()
        .enumerate()
        .map(|(i, values)| {
            let data = SeriesData::parse(values.clone())
                .map_err(|e| ApiError::field("series.y", format!("series {i}: {e}")))?;
            backtest(&r.spec, &data, &opts).map_err(|e| match e {
                BacktestError::Invalid(m) => {
                    ApiError::field("series.y", format!("series {i}: {m}"))
                }
                BacktestError::Fit(e) => ApiError::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("series {i}: no model could be fitted: {e}"),
                ),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut idxs = Vec::new();
    let mut forecasts = Vec::new();
    let mut start = 0;
    for (result, values) in per_series.into_iter().zip(&r.series) {
        for window in result.windows {
            idxs.extend((1..=h).map(|j| start + window.cutoff + j));
            forecasts.push(engine::Forecast {
                mean: window.mean,
                intervals: window.intervals,
            });
        }
        start += values.len();
    }
    Ok(CrossValidationAnswer {
        idxs,
        sizes: vec![n_windows * h; r.series.len()],
        mean: forecasts
            .iter()
            .flat_map(|f| f.mean.iter().copied())
            .collect(),
        intervals: interval_columns(&r.levels, &forecasts),
    })
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
    fn cross_validation_indexes_the_sent_values() {
        let y: Vec<f64> = (0..30).map(|t| 10.0 + t as f64).collect();
        let mut all = y.clone();
        all.extend(&y[..20]);
        let p = payload(json!({
            "series": {"y": all, "sizes": [30, 20]}, "model": "naive", "h": 3, "level": [80]
        }));
        let r = check(&p).expect("valid");
        let cv = cross_validate(&r, 2, 3, true).expect("cv");
        assert_eq!(cv.sizes, vec![6, 6]);
        // Series 0: windows train on 24 and 27 values; series 1 starts at 30.
        assert_eq!(&cv.idxs[..6], &[24, 25, 26, 27, 28, 29]);
        assert_eq!(&cv.idxs[6..], &[44, 45, 46, 47, 48, 49]);
        // Naive repeats the last training value.
        assert_eq!(&cv.mean[..3], &[33.0, 33.0, 33.0]);
        assert_eq!(cv.intervals.expect("intervals")["lo-80"].len(), 12);
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

    #[test]
    fn params_follow_the_season_of_the_frequency() {
        assert_eq!(model_params_for(12), (96, 12));
        assert_eq!(model_params_for(1), (64, 12));
        assert_eq!(model_params_for(365), (1000, 365));
    }
}
