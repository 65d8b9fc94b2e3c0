//! The Prometheus recorder behind the `metrics` facade the crates use: set up
//! once per process, rendered by the gateway's `GET /metrics` and, for a
//! worker, by a small listener of its own (`horizon worker --metrics-listen`).

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

/// Latency buckets in seconds: 1 ms to 5 minutes (a fit may take minutes).
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];
/// Count buckets (series per fit or forecast): 1 to 100 000.
const COUNTS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0, 10000.0, 100000.0,
];

/// What a process runs, and so which metrics it starts at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `serve --broker`: the gateway alone.
    Gateway,
    /// `worker`.
    Worker,
    /// `serve` without a broker: the gateway and its workers.
    Both,
}

/// Installs the recorder (once; later calls return the same handle) and
/// hands its renderer to the gateway's `/metrics`.
pub fn install(role: Role) -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
        .context("latency buckets")?
        .set_buckets_for_metric(Matcher::Suffix("_series".into()), COUNTS)
        .context("count buckets")?
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    let _ = HANDLE.set(handle.clone());
    register(role);
    let render = handle.clone();
    gateway::metrics::set_renderer(move || render.render());
    // Histograms keep their samples until upkeep folds them in.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(5));
            upkeep.run_upkeep();
        })
        .context("starting the metrics upkeep thread")?;
    Ok(handle)
}

/// Serves `GET /metrics` (and nothing else) on `addr`, for a worker.
pub async fn serve_worker_metrics(addr: SocketAddr) -> anyhow::Result<()> {
    install(Role::Worker)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    // Tests read this line to find the port when the address ends in :0.
    tracing::info!("metrics on http://{bound}/metrics");
    let app = axum::Router::new().route("/metrics", axum::routing::get(gateway::metrics::render));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok(())
}

/// Describes the metrics, and starts the unlabelled counters and gauges of
/// what `role` runs at zero, so that a scrape (and a dashboard) finds them
/// before they move; a worker does not list the gateway's, nor the reverse.
fn register(role: Role) {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "horizon_http_requests_total",
        "HTTP requests answered, by method, route and status."
    );
    describe_histogram!(
        "horizon_http_request_duration_seconds",
        Unit::Seconds,
        "Seconds from request to answer, by method and route."
    );
    describe_gauge!(
        "horizon_http_requests_in_flight",
        "HTTP requests being answered."
    );
    describe_gauge!(
        "horizon_fits_in_flight",
        "Fit requests waiting for their fit (gateway)."
    );
    describe_gauge!(
        "horizon_forecasts_in_flight",
        "Forecast requests waiting for their forecast (gateway)."
    );
    describe_histogram!(
        "horizon_forecast_batch_series",
        "Series per forecast answered (gateway)."
    );
    describe_histogram!(
        "horizon_fit_duration_seconds",
        Unit::Seconds,
        "Seconds the engine took to fit a job (worker)."
    );
    describe_histogram!("horizon_fit_series", "Series per fit job (worker).");
    describe_gauge!(
        "horizon_worker_fits_running",
        "Fits running in this worker."
    );
    describe_gauge!(
        "horizon_worker_forecasts_running",
        "Forecasts running in this worker."
    );
    describe_counter!(
        "horizon_cache_hits_total",
        "Forecasts whose fitted model was in the worker's memory cache."
    );
    describe_counter!(
        "horizon_cache_misses_total",
        "Forecasts whose fitted model was loaded from the store."
    );
    describe_histogram!(
        "horizon_store_operation_duration_seconds",
        Unit::Seconds,
        "Seconds per store operation, by backend and op."
    );
    describe_histogram!(
        "horizon_broker_publish_duration_seconds",
        Unit::Seconds,
        "Seconds to publish a job and have the broker confirm it, by kind (distributed)."
    );
    describe_histogram!(
        "horizon_broker_request_duration_seconds",
        Unit::Seconds,
        "Seconds from sending a job to its answer, by kind (distributed)."
    );
    describe_gauge!(
        "horizon_queue_messages",
        "Messages waiting in a job queue, by queue (distributed, every 5 s)."
    );
    describe_gauge!(
        "horizon_versions_pending",
        "Versions registered and not yet settled, in the whole store (gateway, read at each scrape)."
    );
    describe_gauge!(
        "horizon_queue_consumers",
        "Consumers of a job queue, by queue (distributed, every 5 s)."
    );
    describe_counter!(
        "horizon_connections_refused_total",
        "Connections answered 503 at once because --max-connections were open (gateway)."
    );
    if role != Role::Worker {
        metrics::counter!("horizon_connections_refused_total").increment(0);
        for gauge in [
            "horizon_http_requests_in_flight",
            "horizon_fits_in_flight",
            "horizon_forecasts_in_flight",
        ] {
            metrics::gauge!(gauge).increment(0.0);
        }
    }
    if role != Role::Gateway {
        for counter in ["horizon_cache_hits_total", "horizon_cache_misses_total"] {
            metrics::counter!(counter).increment(0);
        }
        for gauge in [
            "horizon_worker_fits_running",
            "horizon_worker_forecasts_running",
        ] {
            metrics::gauge!(gauge).increment(0.0);
        }
    }
}
