//! Prometheus metrics of the HTTP API: requests by route and status, their
//! latency, what is in flight, the versions pending in the store, and
//! `GET /metrics`.
//!
//! Metrics go through the `metrics` facade where things happen; the binary
//! installs the Prometheus recorder and hands its renderer to
//! [`set_renderer`]. Without one (e.g. a library test), the facade's calls
//! do nothing and `/metrics` is a 404 `fail`.

use crate::jsend::ApiError;
use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use std::time::Instant;

/// Requests answered, by `method`, `route` (the route's pattern, e.g.
/// `/v1/models/{name}`, or `unmatched`) and `status`.
pub const HTTP_REQUESTS: &str = "horizon_http_requests_total";
/// Seconds from request to answer, by `method` and `route`.
pub const HTTP_DURATION: &str = "horizon_http_request_duration_seconds";
/// Requests being answered now.
pub const HTTP_IN_FLIGHT: &str = "horizon_http_requests_in_flight";
/// Fit requests waiting for their fit.
pub const FITS_IN_FLIGHT: &str = "horizon_fits_in_flight";
/// Forecast requests waiting for their forecast.
pub const FORECASTS_IN_FLIGHT: &str = "horizon_forecasts_in_flight";
/// Series per forecast answered.
pub const FORECAST_BATCH: &str = "horizon_forecast_batch_series";
/// Versions pending in the store (every tenant), read at each scrape: the
/// same number from every gateway that shares the store.
pub const VERSIONS_PENDING: &str = "horizon_versions_pending";

/// How long a scrape waits for the store's count of pending versions; past
/// it the gauge keeps its last value and the scrape answers anyway.
const PENDING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

type Render = Box<dyn Fn() -> String + Send + Sync>;

static RENDER: OnceLock<Render> = OnceLock::new();

/// Makes `GET /metrics` answer with what `render` returns (the Prometheus
/// text format). The first call wins; later ones return `false`.
pub fn set_renderer(render: impl Fn() -> String + Send + Sync + 'static) -> bool {
    RENDER.set(Box::new(render)).is_ok()
}

/// Metrics in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "The metrics in the Prometheus text format (version 0.0.4).", content_type = "text/plain", body = String)),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    if RENDER.get().is_some() {
        match tokio::time::timeout(PENDING_TIMEOUT, state.store.count_pending()).await {
            Ok(Ok(Some(n))) => metrics::gauge!(VERSIONS_PENDING).set(n as f64),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not count pending versions"),
            Err(_) => tracing::warn!("the store did not count pending versions in time"),
        }
    }
    render().await
}

/// `GET /metrics` of a process without a store of its own to read (a
/// worker's `--metrics-listen`): what the recorder holds.
pub async fn render() -> Response {
    match RENDER.get() {
        Some(render) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            render(),
        )
            .into_response(),
        None => ApiError::fail(
            StatusCode::NOT_FOUND,
            "path",
            "metrics are not enabled in this process",
        )
        .into_response(),
    }
}

/// A gauge raised while this lives (e.g. a fit in flight).
pub struct InFlight(&'static str);

impl InFlight {
    pub fn new(gauge: &'static str) -> Self {
        metrics::gauge!(gauge).increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

/// The pattern of the route that answered, passed from [`route_label`] to
/// [`track`] in the answer's extensions.
#[derive(Clone)]
struct RouteLabel(String);

/// Inner layer (after routing): notes the matched route on the answer.
pub async fn route_label(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

/// Outer layer: counts and times every request, fallbacks included.
pub async fn track(request: Request, next: Next) -> Response {
    let start = Instant::now();
    // Only the standard methods, so made-up ones cannot grow the series.
    let method = match *request.method() {
        Method::GET
        | Method::PUT
        | Method::POST
        | Method::DELETE
        | Method::HEAD
        | Method::PATCH
        | Method::OPTIONS => request.method().as_str().to_string(),
        _ => "other".to_string(),
    };
    let _in_flight = InFlight::new(HTTP_IN_FLIGHT);
    let response = next.run(request).await;
    // Unmatched paths are one label, so a scanner cannot grow the series.
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or_else(|| "unmatched".to_string(), |r| r.0.clone());
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}
