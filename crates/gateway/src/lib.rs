//! Horizon's HTTP API: parses requests, enforces the consistency rule and
//! dispatches jobs through a transport.
//!
//! Every answer is JSend. The consistency rule lives in [`handlers`]: a fit
//! registers its version as pending before it is dispatched or answered; a
//! forecast forecasts the newest version registered before it arrived, waiting
//! for it to settle, and never falls back to an older one.

pub mod admission;
pub mod auth;
mod backtest;
mod body;
mod bulk;
mod compat;
mod dates;
mod handlers;
mod jobs;
pub mod jsend;
mod life;
pub mod metrics;
mod observations;
pub mod openapi;
mod server;
mod spooled;
mod streamed;
pub mod tls;
mod turns;
mod ui;
pub mod validate;

pub use admission::{Admission, AdmissionConfig};
pub use auth::{Auth, Quotas};
pub use server::{serve, ConnectionLimits, Shutdown, DEFAULT_MAX_CONNECTIONS};

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use protocol::ModelName;
use std::sync::Arc;
use std::time::Duration;
use store::ModelStore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use transport::Transport;

/// Default largest accepted request body: 64 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Default largest CSV or Parquet body of a fit (`bulk.rs`): 4 GiB. Such
/// bodies are streamed (CSV) or spooled to a temporary file (Parquet), not
/// held in memory as they arrive.
pub const DEFAULT_BULK_BODY_LIMIT: u64 = 4 << 30;

/// Limits and timeouts of the API.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// How long a forecast waits for a pending version to settle.
    pub wait_timeout: Duration,
    /// How long a fit request waits for its fit to finish.
    pub fit_timeout: Duration,
    /// How long a forecast waits for a worker's answer.
    pub forecast_timeout: Duration,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Largest accepted CSV or Parquet fit body, in bytes.
    pub bulk_body_limit: u64,
    /// What a request may cost (slots, body budget, answer size).
    pub admission: AdmissionConfig,
    /// Timeouts and the cap on open connections.
    pub connections: ConnectionLimits,
    /// Fits larger than this (series × points) run as jobs: `202 Accepted`
    /// and `Location: /v1/jobs/{id}`, as with `Prefer: respond-async`.
    pub async_points: u64,
    /// Versions kept per model; older settled ones are pruned (never the
    /// newest ready one).
    pub keep_versions: usize,
    /// A version leaves only once it fell out of the newest `keep_versions`
    /// this long ago, so that a forecast that chose it can still read it:
    /// at least `wait_timeout` + `forecast_timeout` (the default).
    pub prune_grace: Duration,
    /// How large a shard of a fit may grow: larger fits are split into
    /// shards that workers fit in parallel (see `protocol::shard`).
    pub shard_sizes: protocol::shard::ShardSizes,
}

/// Default of [`GatewayConfig::async_points`]: a million values (about a
/// minute of fitting on two cores for ETS).
pub const DEFAULT_ASYNC_POINTS: u64 = 1_000_000;
/// Default of [`GatewayConfig::keep_versions`].
pub const DEFAULT_KEEP_VERSIONS: usize = 20;

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            wait_timeout: Duration::from_secs(60),
            fit_timeout: Duration::from_secs(300),
            forecast_timeout: Duration::from_secs(60),
            body_limit: DEFAULT_BODY_LIMIT,
            bulk_body_limit: DEFAULT_BULK_BODY_LIMIT,
            admission: AdmissionConfig::default(),
            connections: ConnectionLimits::default(),
            async_points: DEFAULT_ASYNC_POINTS,
            keep_versions: DEFAULT_KEEP_VERSIONS,
            prune_grace: Duration::from_secs(120),
            shard_sizes: protocol::shard::ShardSizes::default(),
        }
    }
}

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn ModelStore>,
    pub transport: Arc<dyn Transport>,
    pub config: Arc<GatewayConfig>,
    pub admission: Arc<Admission>,
    /// API keys, tenants and quotas; open (no keys) unless [`Self::with_auth`].
    pub auth: Arc<Auth>,
    /// The calendars of the shards forecasts read (future timestamps).
    pub calendars: Arc<dates::CalendarCache>,
    /// Per model: new observations take turns, each extending the version
    /// the one before made.
    pub(crate) appends: Arc<turns::Turns<ModelName>>,
    /// Per model: a registration that extends a version checks, in its turn,
    /// that the version is still the newest.
    pub(crate) registrations: Arc<turns::Turns<ModelName>>,
    /// The jobs with their own outcome (backtests) this gateway runs.
    pub(crate) running_here: Arc<jobs::RunningHere>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn ModelStore>,
        transport: Arc<dyn Transport>,
        config: GatewayConfig,
    ) -> Self {
        Self {
            store,
            transport,
            admission: Arc::new(Admission::new(config.admission.clone())),
            config: Arc::new(config),
            auth: Arc::new(Auth::open()),
            calendars: Arc::new(dates::CalendarCache::new(dates::CALENDAR_CACHE_BYTES)),
            appends: Arc::default(),
            registrations: Arc::default(),
            running_here: Arc::default(),
        }
    }

    /// Asks callers for API keys as `auth` says.
    pub fn with_auth(self, auth: Auth) -> Self {
        Self {
            auth: Arc::new(auth),
            ..self
        }
    }
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    Router::new()
        .route("/fit_model", post(handlers::seed_fit))
        .route("/forecast", post(handlers::seed_forecast))
        .route("/v1/models", get(handlers::list_models))
        .route(
            "/v1/models/{name}",
            get(handlers::describe_model)
                // JSON bodies go on to handlers::v1_fit; CSV and Parquet are read here.
                .put(bulk::v1_fit)
                .delete(life::delete_model),
        )
        .route("/v1/models/{name}/rollback", post(life::rollback))
        .route(
            "/v1/models/{name}/versions/{version}",
            delete(life::delete_version),
        )
        .route("/v1/jobs/{id}", get(jobs::get_job).delete(jobs::cancel_job))
        // `Accept: text/csv` or Parquet downloads; JSON goes on to handlers::v1_forecast.
        .route("/v1/models/{name}/forecast", post(bulk::v1_forecast))
        .route("/v1/backtest", post(backtest::backtest_data))
        .route("/v1/models/{name}/backtest", post(backtest::backtest_model))
        .route(
            "/v1/models/{name}/observations",
            post(observations::observations),
        )
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .merge(ui::routes())
        // TimeGPT-compatible endpoints for Nixtla's client (compat/nixtla.rs).
        .merge(compat::nixtla::routes())
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs))
        .route(openapi::RAPIDOC_PATH, get(openapi::docs_script))
        .route("/metrics", get(metrics::metrics))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        // Every route sees the caller's tenant (see auth.rs).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        // Outermost of the route layers, so refusals are counted too.
        .route_layer(axum::middleware::from_fn(metrics::route_label))
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(handlers::panicked))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(tracing::Level::INFO))
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
}
