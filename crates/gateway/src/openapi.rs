//! The OpenAPI 3.1 document of the API, generated from the handlers' own
//! answer types and their `#[utoipa::path]` attributes, served at
//! `GET /openapi.json`, and the docs page at `GET /docs` (RapiDoc, vendored
//! from npm into `crates/gateway/assets/` and embedded in the binary: the
//! page works offline).
//!
//! Adding an endpoint to the document is one line in [`ApiDoc`]'s `paths(...)`
//! (its handler carries `#[utoipa::path]`); every operation gets the JSend
//! `fail` (4XX) and `error` (5XX) answers added by [`document`], so a handler
//! lists only what is particular to it.
//!
//! The request bodies are parsed by hand in `validate.rs` (every field its
//! own message), so their shapes are described here by the `*Body` types,
//! which mirror what `validate.rs` accepts; the conformance tests send these
//! shapes (and their examples) to the real binary.

use crate::handlers;
use crate::validate::{
    MAX_ID_LEN, MAX_LEVELS, MAX_SEASONS, MAX_SEASON_LENGTH, MAX_SERIES_PER_FIT, MIN_SERIES_LEN,
};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{RefOr, ResponseBuilder};
use utoipa::{OpenApi, PartialSchema, ToSchema};

/// The vendored docs page script (RapiDoc 9.3.8, MIT, see `assets/README.md`).
const RAPIDOC_JS: &str = include_str!("../assets/rapidoc-min.js");
/// Where the docs page loads it from.
pub const RAPIDOC_PATH: &str = "/docs/rapidoc-min.js";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Horizon",
        description = "Forecasting as a service: send time series, get forecasts with \
            prediction intervals. Every answer is JSend: `success` with `data`; `fail` (4XX) \
            with one message per offending field; `error` (5XX) with a `message`. A fit \
            registers a new version of its model; a forecast uses the newest version \
            registered before it arrived, waiting while it is pending.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    // One line per endpoint; the handler carries `#[utoipa::path]`.
    paths(
        handlers::seed_fit,
        handlers::seed_forecast,
        handlers::list_models,
        handlers::describe_model,
        handlers::v1_fit,
        handlers::v1_forecast,
        crate::life::delete_model,
        crate::life::delete_version,
        crate::life::rollback,
        crate::observations::observations,
        crate::backtest::backtest_data,
        crate::backtest::backtest_model,
        crate::jobs::get_job,
        crate::jobs::cancel_job,
        handlers::healthz,
        handlers::readyz,
        openapi_json,
        docs,
        crate::metrics::metrics,
    ),
    components(schemas(Fail, Error)),
    tags(
        (name = "original", description = "The original endpoints, acting on the model named `default`."),
        (name = "models", description = "Named models, their versions, fits and forecasts, new observations, rollback and deletes."),
        (name = "backtests", description = "Rolling-origin evaluation: on data sent in the body, or on a model's version."),
        (name = "jobs", description = "Long work followed by id: async fits and backtests (`202 Accepted` with `Location: /v1/jobs/{id}`)."),
        (name = "operations", description = "Health, readiness, metrics and this document."),
    ),
)]
pub struct ApiDoc;

/// The document, with the JSend `fail`/`error` answers on every operation.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    // The limits, from the constants the validation uses.
    let limits = format!(
        "\n\nLimits: request body 64 MiB by default (`--max-body-bytes`; larger: 413); \
         {MAX_SERIES_PER_FIT} series per fit; {MIN_SERIES_LEN} to 100000 points per series; \
         `horizon` and `num_steps` 1 to 10000; `season_length` 1 to {MAX_SEASON_LENGTH}, or a \
         list of at most {MAX_SEASONS}; at most {MAX_LEVELS} `level`s, each strictly between 0 \
         and 100; series ids 1 to {MAX_ID_LEN} bytes, unique within a fit; model names 1 to 64 \
         characters of `A-Z a-z 0-9 _ - .`; `Idempotency-Key` 1 to 128 visible ASCII \
         characters. Listings: `limit` 1 to 1000 (default 100), `after` the `next_after` of \
         the previous page."
    );
    let description = doc.info.description.take().unwrap_or_default();
    doc.info.description = Some(description + &limits);
    // CSV and Parquet bodies and downloads (bulk.rs).
    crate::bulk::document(&mut doc);
    // API keys (auth.rs): optional, since a server without keys is open.
    use utoipa::openapi::security::{
        HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("hzn_<id>_<secret>")
                    .description(Some(
                        "`Authorization: Bearer <key>`, a key made by `horizon keys create` \
                         (or `HORIZON_ADMIN_KEY`). Needed once the server has a live key; \
                         without one: 401. Over a tenant's quota: 429 with `Retry-After`.",
                    ))
                    .build(),
            ),
        );
    doc.security = Some(vec![
        SecurityRequirement::default(),
        SecurityRequirement::new("api_key", Vec::<String>::new()),
    ]);
    let fail = ResponseBuilder::new()
        .description(
            "JSend `fail`: the request was wrong (400), has no valid API key where one is \
             needed (401), names an unknown route or model (404), uses a method the route does \
             not have (405), is too large (413) or is over a tenant's rate or quota (429, with \
             `Retry-After`). One message \
             per offending field; `body`, `content-type`, `path` and `method` name problems \
             with the request itself.",
        )
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "Fail",
                ))))
                .build(),
        )
        .build();
    let error = ResponseBuilder::new()
        .description(
            "JSend `error`: we failed. 500 (a fit failed, a bug), 503 (store or transport \
             unavailable; retry, with the same `Idempotency-Key` for a fit), 504 (a wait or a \
             fit took longer than its timeout).",
        )
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "Error",
                ))))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let responses = &mut op.responses.responses;
            responses
                .entry("4XX".to_string())
                .or_insert_with(|| RefOr::T(fail.clone()));
            responses
                .entry("5XX".to_string())
                .or_insert_with(|| RefOr::T(error.clone()));
        }
    }
    doc
}

/// The document as JSON text, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        // Serializing plain data structures cannot fail.
        serde_json::to_string(&document()).unwrap_or_else(|_| "{}".to_string())
    })
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_json(),
    )
        .into_response()
}

/// The docs page: the document rendered by RapiDoc, with "try it" against this server.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    responses((status = 200, description = "An HTML page that renders `/openapi.json`.", content_type = "text/html", body = String)),
)]
pub async fn docs() -> Response {
    // System fonts: RapiDoc would otherwise name a web font, and the page
    // must not reach out to any other host.
    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Horizon API</title>
<script type="module" src="{RAPIDOC_PATH}"></script>
</head>
<body>
<rapi-doc spec-url="/openapi.json" render-style="read" show-header="false" allow-server-selection="false"
  load-fonts="false"
  regular-font="system-ui, -apple-system, 'Segoe UI', sans-serif" mono-font="ui-monospace, monospace"
  schema-description-expanded="true" default-schema-tab="schema"></rapi-doc>
</body>
</html>
"#
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page,
    )
        .into_response()
}

/// The vendored RapiDoc script.
pub async fn docs_script() -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        RAPIDOC_JS,
    )
        .into_response()
}

// ---- JSend envelopes ----

/// JSend `success`: `{"status": "success", "data": ...}`.
#[derive(Serialize, ToSchema)]
pub struct Success<T: ToSchema> {
    #[schema(inline)]
    pub status: SuccessTag,
    pub data: T,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuccessTag {
    Success,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailTag {
    Fail,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorTag {
    Error,
}

/// JSend `fail`: the client's fault, one message per offending field
/// (nested fields written like `series[2].values`).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "fail", "data": {"method": "unknown method 'magic'; expected one of: auto, naive, ..."}}))]
pub struct Fail {
    #[schema(inline)]
    pub status: FailTag,
    pub data: BTreeMap<String, String>,
}

/// JSend `error`: our fault; `code` repeats the HTTP status, `data` says more
/// when there is more (e.g. the model and version concerned).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "error", "message": "version 3 of model 'shop' is still pending after 1m; try again later", "code": 504, "data": {"model": "shop", "version": 3}}))]
pub struct Error {
    #[schema(inline)]
    pub status: ErrorTag,
    pub message: String,
    pub code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

// ---- pieces of requests and answers shared by several endpoints ----

/// A forecasting method (`auto`, the default, is the engine's best combination).
pub struct MethodName;

impl PartialSchema for MethodName {
    fn schema() -> RefOr<Schema> {
        let names: Vec<&str> = engine::Method::ALL.iter().map(|m| m.name()).collect();
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(names))
            .description(Some(
                "A forecasting method; `auto` (the default) is the engine's best combination.",
            ))
            .into()
    }
}

impl ToSchema for MethodName {}

/// A version's status: `pending` until its fit ends, then `ready` or `failed`
/// (with `reason`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersionStatusName {
    Pending,
    Ready,
    Failed,
}

/// A prediction interval of one series.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Interval {
    /// Coverage in percent, e.g. 95.
    #[schema(example = 95.0)]
    pub level: f64,
    /// One lower bound per step.
    pub lower: Vec<f64>,
    /// One upper bound per step.
    pub upper: Vec<f64>,
}

/// Season length(s): an integer (`12`; `1` means no seasonality) or a list of
/// at most 10 of them (`[24, 168]`), each 1 to 10 000.
pub struct SeasonLength;

impl PartialSchema for SeasonLength {
    fn schema() -> RefOr<Schema> {
        let one = || {
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .minimum(Some(1))
                .maximum(Some(MAX_SEASON_LENGTH))
        };
        OneOfBuilder::new()
            .item(one())
            .item(
                ArrayBuilder::new()
                    .items(one())
                    .min_items(Some(1))
                    .max_items(Some(MAX_SEASONS)),
            )
            .description(Some(
                "Season length(s): an integer (`12`; `1` means no seasonality) or a list of them \
                 (`[24, 168]`). Absent: the engine looks for seasons (from `freq` first).",
            ))
            .into()
    }
}

impl ToSchema for SeasonLength {}

/// A series' time axis: ISO 8601 dates or date-times, or integer positions
/// (all of one kind).
pub struct Ds;

impl PartialSchema for Ds {
    fn schema() -> RefOr<Schema> {
        let of = |item: ObjectBuilder| ArrayBuilder::new().items(item).min_items(Some(1));
        OneOfBuilder::new()
            .item(of(
                ObjectBuilder::new().schema_type(SchemaType::Type(Type::String))
            ))
            .item(of(ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))))
            .description(Some(
                "One ISO 8601 date or date-time per value (`2024-01-31`, \
                 `2024-01-31T13:30:00Z`), or one integer position per value (placed on their \
                 step, the smallest gap between neighbours; wider gaps are missing values).",
            ))
            .into()
    }
}

impl ToSchema for Ds {}

/// One point of a series' time axis in an answer: a timestamp, or the
/// integer position of a series fitted on integer `ds`.
pub struct AxisLabel;

impl PartialSchema for AxisLabel {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)))
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Integer))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
            )
            .into()
    }
}

impl ToSchema for AxisLabel {}

// ---- request bodies (parsed by validate.rs) ----

/// `POST /fit_model`: one series, the model named `default`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": [112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118, 115, 126, 141, 135, 125, 149, 170, 170, 158, 133, 114, 140], "season_length": 12}))]
pub struct SeedFitBody {
    /// The observations; `null` is a missing value. 3 to 100 000 of them.
    #[schema(min_items = 3, max_items = 100000)]
    pub data: Vec<Option<f64>>,
    #[schema(value_type = Option<SeasonLength>)]
    pub season_length: Option<serde_json::Value>,
    #[schema(value_type = Option<MethodName>)]
    pub method: Option<String>,
    /// `true` clips forecasts at zero, `false` never; absent, decided from the data.
    pub nonnegative: Option<bool>,
    /// One timestamp or integer position per value (instead of `start`).
    #[schema(value_type = Option<Ds>)]
    pub ds: Option<Vec<serde_json::Value>>,
    /// The first timestamp, with `freq`.
    #[schema(example = "2024-01-01")]
    pub start: Option<String>,
    /// A pandas frequency alias: `min`, `15min`, `h`, `D`, `W`, `MS`, `ME`, `QS`, `QE`, `YS`, `YE`...
    #[schema(example = "D")]
    pub freq: Option<String>,
}

/// `POST /forecast`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"num_steps": 6}))]
pub struct SeedForecastBody {
    #[schema(minimum = 1, maximum = 10000)]
    pub num_steps: u32,
}

/// One series of a fit.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesIn {
    /// Unique within the fit, 1 to 256 bytes (an integer is read as its text).
    #[schema(min_length = 1, max_length = 256)]
    pub id: String,
    /// The observations; `null` is a missing value. 3 to 100 000 of them.
    #[schema(min_items = 3, max_items = 100000)]
    pub values: Vec<Option<f64>>,
    /// One timestamp or integer position per value (instead of `start`).
    #[schema(value_type = Option<Ds>)]
    pub ds: Option<Vec<serde_json::Value>>,
    /// The first timestamp, with `freq`.
    pub start: Option<String>,
    /// A pandas frequency alias, e.g. `h`, `D`, `MS`.
    pub freq: Option<String>,
}

/// `PUT /v1/models/{name}`: the series as objects, in the compact form
/// (`sizes` + `y`), or in the long format (`unique_id`, `ds`, `y`), plus the
/// fit options.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(example = json!({"series": [{"id": "north", "values": [20, 31, 25, 40, 22, 33, 27, 43, 24, 35, 29, 45]}, {"id": "south", "values": [5, 5, 6, 6, 7, 7, 8, 8]}], "season_length": 4}))]
pub enum V1FitBody {
    Series(SeriesForm),
    Compact(CompactForm),
    Long(LongForm),
}

/// Fit options shared by the three forms.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct FitOptions {
    #[schema(value_type = Option<SeasonLength>)]
    pub season_length: Option<serde_json::Value>,
    #[schema(value_type = Option<MethodName>)]
    pub method: Option<String>,
    /// `true` clips forecasts at zero, `false` never; absent, decided from the data.
    pub nonnegative: Option<bool>,
    /// Frequency of every series that has none of its own.
    pub freq: Option<String>,
}

/// `{"series": [{"id", "values", "ds"?, "start"?, "freq"?}, ...]}`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SeriesForm {
    #[schema(min_items = 1, max_items = 100000)]
    pub series: Vec<SeriesIn>,
    #[serde(flatten)]
    pub options: FitOptions,
}

/// The number of values of one series of the compact form.
#[derive(ToSchema)]
#[schema(minimum = 3, maximum = 100000)]
pub struct SeriesSize(#[allow(dead_code)] u32);

/// `{"sizes": [n1, n2, ...], "y": [all values], "ids"?, "ds"?}`: series `i` is
/// `y[sizes[0] + ... + sizes[i-1] ..][..sizes[i]]`, named `"0"`, `"1"`, ...
/// without `ids`.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"sizes": [4, 3], "y": [1, 2, 3, 4, 10, 11, 12], "ids": ["a", "b"], "method": "naive"}))]
pub struct CompactForm {
    #[schema(min_items = 1, max_items = 100000, value_type = Vec<SeriesSize>)]
    pub sizes: Vec<u32>,
    pub y: Vec<Option<f64>>,
    pub ids: Option<Vec<String>>,
    #[schema(value_type = Option<Ds>)]
    pub ds: Option<Vec<serde_json::Value>>,
    #[serde(flatten)]
    pub options: FitOptions,
}

/// The long format: one row per observation, series named by `unique_id` in
/// order of first appearance.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"unique_id": ["a", "a", "a", "a", "b", "b", "b", "b"], "ds": ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"], "y": [10, 12, 11, 13, 3, 0, 2, 1], "method": "seasonal_naive", "season_length": 2}))]
pub struct LongForm {
    pub unique_id: Vec<String>,
    #[schema(value_type = Option<Ds>)]
    pub ds: Option<Vec<serde_json::Value>>,
    pub y: Vec<Option<f64>>,
    #[serde(flatten)]
    pub options: FitOptions,
}

/// `POST /v1/models/{name}/forecast`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"horizon": 4, "level": [80, 95], "series": ["north"]}))]
pub struct V1ForecastBody {
    #[schema(minimum = 1, maximum = 10000)]
    pub horizon: u32,
    /// Prediction-interval levels in percent, each strictly between 0 and 100; at most 20.
    #[schema(max_items = 20)]
    pub level: Option<Vec<f64>>,
    /// The series to forecast (default: all, in fit order).
    pub series: Option<Vec<String>>,
    /// Forecast exactly this version (waiting only if it is pending) instead
    /// of the newest; 404 if there is none, 409 if it failed.
    #[schema(minimum = 1)]
    pub version: Option<i64>,
}

/// The options of a backtest.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BacktestOptionsBody {
    /// Steps forecast at each origin.
    #[schema(minimum = 1, maximum = 10000)]
    pub horizon: u32,
    /// Origins (windows), the last one `horizon` steps before the end; default 1.
    #[schema(minimum = 1, maximum = 100)]
    pub n_windows: Option<u32>,
    /// Steps between origins; default `horizon`.
    #[schema(minimum = 1, maximum = 100000)]
    pub step_size: Option<u32>,
    /// `true` (default): refit at each origin; `false`: fit once at the
    /// first origin and filter the fitted model forward.
    pub refit: Option<bool>,
    /// Interval levels whose coverage is measured, each strictly between 0 and 100; at most 20.
    #[schema(max_items = 20)]
    pub level: Option<Vec<f64>>,
    /// Include each window's forecasts and actual values.
    pub include_forecasts: Option<bool>,
}

/// `POST /v1/backtest`: a fit's body (any of its forms and options) plus the backtest options.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"series": [{"id": "north", "values": [20, 31, 25, 40, 22, 33, 27, 43, 24, 35, 29, 45, 26, 37, 31, 47]}], "method": "seasonal_naive", "season_length": 4, "horizon": 4, "n_windows": 2, "level": [80]}))]
pub struct BacktestDataBody {
    #[serde(flatten)]
    pub fit: V1FitBody,
    #[serde(flatten)]
    pub options: BacktestOptionsBody,
}

/// `POST /v1/models/{name}/backtest`: the backtest options and the version
/// to measure (default: the newest, waited for). The data is the version's
/// training data, the method its method.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"horizon": 2, "n_windows": 2, "refit": false, "level": [80]}))]
pub struct ModelBacktestBody {
    #[serde(flatten)]
    pub options: BacktestOptionsBody,
    #[schema(minimum = 1)]
    pub version: Option<i64>,
}

/// `POST /v1/models/{name}/rollback`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 1}))]
pub struct RollbackBody {
    /// A ready version of the model.
    #[schema(minimum = 1)]
    pub version: i64,
}

/// New values of one series, appended after its last one.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservedSeries {
    /// A series of the model's current version.
    pub id: String,
    /// The new observations; `null` is a missing value.
    #[schema(min_items = 1, max_items = 100000)]
    pub values: Vec<Option<f64>>,
    /// Their timestamps (or integer positions), where the series has them:
    /// the steps after its last one.
    #[schema(value_type = Option<Ds>)]
    pub ds: Option<Vec<serde_json::Value>>,
}

/// `POST /v1/models/{name}/observations`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"series": [{"id": "north", "values": [26, 37]}]}))]
pub struct ObservationsBody {
    #[schema(min_items = 1, max_items = 100000)]
    pub series: Vec<ObservedSeries>,
}

// ---- answers built as JSON in the handlers ----

/// `GET /v1/models`: a page of models by name.
#[derive(Serialize, ToSchema)]
pub struct ModelList {
    pub(crate) models: Vec<handlers::ModelListEntry<'static>>,
    /// When more items follow: the `after` of the next page.
    pub next_after: Option<String>,
}

/// `GET /v1/models/{name}`: a model and a page of its versions.
#[derive(Serialize, ToSchema)]
pub struct ModelPage {
    pub name: String,
    pub latest_version: Option<i64>,
    pub(crate) versions: Vec<handlers::VersionAnswer<'static>>,
    /// When more items follow: the `after` of the next page.
    pub next_after: Option<i64>,
}

/// `POST /v1/models/{name}/rollback`: the new version.
#[derive(Serialize, ToSchema)]
pub struct RollbackAnswer {
    #[serde(flatten)]
    pub(crate) version: handlers::V1FitAnswer,
    /// The version it copies.
    pub rollback_of: i64,
}

/// `POST /v1/models/{name}/observations`: the new version.
#[derive(Serialize, ToSchema)]
pub struct ObservationsAnswer {
    #[serde(flatten)]
    pub(crate) version: handlers::V1FitAnswer,
    /// The version whose series it extends.
    pub base_version: i64,
}

/// `DELETE /v1/models/{name}`.
#[derive(Serialize, ToSchema)]
pub struct DeletedModel {
    #[schema(example = "shop")]
    pub name: String,
    pub deleted: bool,
}

/// `DELETE /v1/models/{name}/versions/{version}`.
#[derive(Serialize, ToSchema)]
pub struct DeletedVersion {
    #[schema(example = "shop")]
    pub name: String,
    pub version: i64,
    /// Its status when it was deleted.
    pub status: VersionStatusName,
    pub deleted: bool,
}

/// Accuracy of forecasts against what happened.
#[derive(Serialize, ToSchema)]
pub struct BacktestMetrics {
    /// Mean absolute error; `null` (as are `rmse` and `smape`) when the
    /// series had no actual value to score (all missing) or its errors are
    /// beyond the range of a double.
    pub mae: Option<f64>,
    pub rmse: Option<f64>,
    /// Symmetric MAPE in percent (0 to 200).
    pub smape: Option<f64>,
    /// Mean absolute scaled error; `null` when no window's training data
    /// has a positive naive scale (e.g. a constant series).
    pub mase: Option<f64>,
    /// Share of actual values inside the interval, by level (`"80"`, `"97.5"`).
    pub coverage: BTreeMap<String, f64>,
}

/// One window of a series' backtest (with `include_forecasts`).
#[derive(Serialize, ToSchema)]
pub struct BacktestWindowAnswer {
    /// Index (0-based) of the window's last training value.
    pub cutoff: u64,
    /// Its timestamp (or integer position), when the series has a time axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<AxisLabel>)]
    pub cutoff_ds: Option<serde_json::Value>,
    /// The timestamps (or integer positions) of the forecast steps, when the
    /// series has a time axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Ds>)]
    pub ds: Option<Vec<serde_json::Value>>,
    /// What happened (`null` where missing).
    pub actual: Vec<Option<f64>>,
    pub mean: Vec<f64>,
    pub intervals: Vec<Interval>,
}

/// The backtest of one series.
#[derive(Serialize, ToSchema)]
pub struct SeriesBacktestAnswer {
    pub id: String,
    pub metrics: BacktestMetrics,
    /// Every window, oldest first, with `include_forecasts`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<BacktestWindowAnswer>,
}

/// A backtest's answer.
#[derive(Serialize, ToSchema)]
pub struct BacktestAnswer {
    /// The model measured (a model's backtest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The version measured (a model's backtest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[schema(value_type = MethodName)]
    pub method: String,
    pub horizon: u64,
    pub n_windows: u64,
    pub step_size: u64,
    pub refit: bool,
    /// Means over the series.
    pub metrics: BacktestMetrics,
    pub series: Vec<SeriesBacktestAnswer>,
}

/// What a job does (`timegpt_*`: the async jobs of the TimeGPT-compatible
/// endpoints, `/v2/{forecast,cross_validation}/async`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Fit,
    Backtest,
    TimegptForecast,
    TimegptCrossValidation,
}

/// Where a job is in its life.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatusName {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// A succeeded job's answer: a fit's (kind `fit`) or a backtest's.
// Only describes the document: the answer is kept as JSON by the store.
#[allow(dead_code)]
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum JobResult {
    Fit(#[schema(inline)] handlers::V1FitAnswer),
    Backtest(BacktestAnswer),
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Alive {
    /// Always `true`: the process answers.
    pub alive: bool,
}

/// `GET /readyz`: `ok` or what is wrong, per dependency.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"store": "ok", "transport": "ok"}))]
pub struct Readiness {
    pub store: String,
    pub transport: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_openapi_3_1_with_the_limits() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).expect("JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let description = doc["info"]["description"].as_str().expect("description");
        assert!(description.contains(&format!("{MAX_SERIES_PER_FIT} series per fit")));
    }

    #[test]
    fn every_operation_has_jsend_fail_and_error() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).expect("JSON");
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.len() >= 10, "{paths:?}");
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("path item") {
                let responses = &op["responses"];
                let success = responses.get("200").or_else(|| responses.get("201"));
                assert!(success.is_some(), "{method} {path} lacks a success");
                for code in ["4XX", "5XX"] {
                    assert!(
                        responses.get(code).is_some(),
                        "{method} {path} lacks {code}"
                    );
                }
            }
        }
    }

    /// A summary is plain text (OpenAPI renders only descriptions as
    /// Markdown) on one line, and says more than the path.
    #[test]
    fn every_summary_is_one_plain_sentence() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).expect("JSON");
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let summary = op["summary"].as_str().unwrap_or_default();
                assert!(
                    summary.len() > 10
                        && !summary.contains(['`', '*', '\n'])
                        && !summary.contains(path.as_str()),
                    "{method} {path}: {summary:?}"
                );
            }
        }
    }
}
