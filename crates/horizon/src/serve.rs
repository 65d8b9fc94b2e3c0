//! `horizon serve`: the gateway, by default with in-process workers and an
//! embedded store.
//!
//! The store and the transport are built by [`build_store`] and
//! [`build_transport`]; everything else only sees `Arc<dyn ModelStore>` and
//! `Arc<dyn Transport>`, so another deployment mode is a branch in those two.

use anyhow::Context;
use clap::Args;
use gateway::{AppState, GatewayConfig, Shutdown};
use std::sync::Arc;
use std::time::Duration;
use std::{net::SocketAddr, path::PathBuf};
use store::{ModelStore, SqliteStore};
use transport::{InProcessTransport, Transport};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address the HTTP API listens on.
    #[arg(long, env = "HORIZON_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the embedded store (used without --store).
    #[arg(long, env = "HORIZON_DATA_DIR", default_value = "./horizon-data")]
    pub data_dir: PathBuf,
    /// How long a forecast waits for a pending version to settle, e.g. `60s`.
    #[arg(long, env = "HORIZON_WAIT_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    /// How long a fit request waits for its fit, e.g. `5m`; the fit goes on after.
    #[arg(long, env = "HORIZON_FIT_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub fit_timeout: Duration,
    /// How long a forecast request waits for a worker's answer, e.g. `60s`.
    #[arg(long, env = "HORIZON_FORECAST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub forecast_timeout: Duration,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "HORIZON_MAX_BODY_BYTES", default_value_t = gateway::DEFAULT_BODY_LIMIT)]
    pub max_body_bytes: usize,
    /// Fits that run at once in this process (default: the number of cores).
    #[arg(long, env = "HORIZON_FIT_CONCURRENCY")]
    pub fit_concurrency: Option<usize>,
    /// Fitted series the in-process worker keeps decoded in memory.
    #[arg(long, env = "HORIZON_CACHE_SERIES", default_value_t = worker::DEFAULT_CACHE_SERIES)]
    pub cache_series: usize,
    /// Distributed mode: the RabbitMQ broker, e.g. amqp://guest:guest@127.0.0.1:5672/%2f.
    /// The gateway then runs no workers (start `horizon worker`s) unless --workers asks.
    #[arg(long, env = "HORIZON_BROKER", requires = "store")]
    pub broker: Option<String>,
    /// Distributed mode: the PostgreSQL registry, e.g. postgres://postgres@127.0.0.1:5432/horizon.
    #[arg(long, env = "HORIZON_STORE", requires = "broker")]
    pub store: Option<String>,
    /// Distributed mode: also run this many workers in this process.
    #[arg(long, env = "HORIZON_WORKERS", default_value_t = 0)]
    pub workers: usize,
    #[command(flatten)]
    pub cluster: crate::distributed::ClusterArgs,
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("bad duration '{s}' ({e}); use e.g. 30s, 500ms, 5m"))
}

impl ServeArgs {
    fn gateway_config(&self) -> GatewayConfig {
        GatewayConfig {
            wait_timeout: self.wait_timeout,
            fit_timeout: self.fit_timeout,
            forecast_timeout: self.forecast_timeout,
            body_limit: self.max_body_bytes,
        }
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(args));
    // A fit still running on a blocking thread (its request timed out) must
    // not hold up the exit; its version is failed as interrupted on restart.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// Logs to stderr, filtered by `RUST_LOG` (default: info).
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Does nothing if logging was set up already.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    crate::metrics_exporter::install()?;
    let store = build_store(&args).await?;
    let transport = crate::fault::gateway_transport(build_transport(&args, store.clone()));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // Tests and scripts read this line to find the port when --listen ends in :0.
    tracing::info!(data_dir = %args.data_dir.display(), "listening on http://{addr}");

    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let state = AppState::new(store.clone(), transport, args.gateway_config());
    gateway::serve(listener, state, shutdown)
        .await
        .context("serving HTTP")?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The model registry: the embedded SQLite store in `--data-dir`.
async fn build_store(args: &ServeArgs) -> anyhow::Result<Arc<dyn ModelStore>> {
    if let Some(url) = &args.store {
        return crate::distributed::gateway_store(&args.cluster, url).await;
    }
    let store = SqliteStore::open(&args.data_dir)
        .await
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    tracing::info!(path = %store.path().display(), "embedded store open");
    Ok(Arc::new(store))
}

/// How jobs reach workers: an in-process worker on the same store.
fn build_transport(args: &ServeArgs, store: Arc<dyn ModelStore>) -> Arc<dyn Transport> {
    if let Some(broker) = &args.broker {
        return crate::distributed::gateway_transport(
            &args.cluster,
            broker,
            args.fit_timeout,
            args.forecast_timeout,
            args.workers,
            args.cache_series,
            store,
        );
    }
    let worker = Arc::new(worker::Worker::with_cache(store, args.cache_series));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fit_slots = args.fit_concurrency.unwrap_or(cores).max(1);
    Arc::new(InProcessTransport::new(worker, fit_slots, 4 * cores))
}
