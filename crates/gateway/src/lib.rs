//! Horizon's HTTP API: parses requests, enforces the consistency rule and
//! dispatches jobs through a transport.
//!
//! Every answer is JSend. The consistency rule lives in [`handlers`]: a fit
//! registers its version as pending before it is dispatched or answered; a
//! forecast forecasts the newest version registered before it arrived, waiting
//! for it to settle, and never falls back to an older one.

mod body;
mod dates;
mod handlers;
pub mod jsend;
pub mod metrics;
pub mod openapi;
mod server;
pub mod validate;

pub use server::{serve, Shutdown};

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use store::ModelStore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use transport::Transport;

/// Default largest accepted request body: 64 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;

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
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            wait_timeout: Duration::from_secs(60),
            fit_timeout: Duration::from_secs(300),
            forecast_timeout: Duration::from_secs(60),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn ModelStore>,
    pub transport: Arc<dyn Transport>,
    pub config: Arc<GatewayConfig>,
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
            config: Arc::new(config),
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
            get(handlers::describe_model).put(handlers::v1_fit),
        )
        .route("/v1/models/{name}/forecast", post(handlers::v1_forecast))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs))
        .route(openapi::RAPIDOC_PATH, get(openapi::docs_script))
        .route("/metrics", get(metrics::metrics))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
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
