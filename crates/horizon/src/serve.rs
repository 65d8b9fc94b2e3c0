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
    /// Largest CSV or Parquet fit body in bytes (streamed, or spooled to a
    /// temporary file for Parquet; not held in memory as it arrives).
    #[arg(long, env = "HORIZON_MAX_BULK_BODY_BYTES", default_value_t = gateway::DEFAULT_BULK_BODY_LIMIT)]
    pub max_bulk_body_bytes: u64,
    /// Open HTTP connections at most; one more is answered 503 and closed.
    /// Lowered to fit under the open-files limit (`ulimit -n`) when needed.
    #[arg(long, env = "HORIZON_MAX_CONNECTIONS", default_value_t = gateway::DEFAULT_MAX_CONNECTIONS, value_parser = parse_at_least_one)]
    pub max_connections: usize,
    /// Time a client has to send a request's headers; also how long an idle
    /// keep-alive connection stays open, e.g. `10s`.
    #[arg(long, env = "HORIZON_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body, e.g. `60s`.
    #[arg(long, env = "HORIZON_BODY_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Fits admitted at once (running or waiting for a worker, including
    /// fits whose client has gone); one more is answered 503 + Retry-After.
    #[arg(long, env = "HORIZON_MAX_FITS", default_value_t = gateway::admission::DEFAULT_MAX_FITS, value_parser = parse_at_least_one)]
    pub max_fits: usize,
    /// Forecasts admitted at once; one more is answered 503 + Retry-After.
    #[arg(long, env = "HORIZON_MAX_FORECASTS", default_value_t = gateway::admission::DEFAULT_MAX_FORECASTS, value_parser = parse_at_least_one)]
    pub max_forecasts: usize,
    /// Bytes of request bodies held in memory at once (each body counts
    /// its Content-Length); a body that does not fit: 503 + Retry-After.
    #[arg(long, env = "HORIZON_BODY_BUDGET_BYTES", default_value_t = gateway::admission::DEFAULT_BODY_BUDGET)]
    pub body_budget_bytes: usize,
    /// Numbers one forecast answer may hold: horizon × series × (1 + 2 × levels).
    #[arg(long, env = "HORIZON_MAX_FORECAST_VALUES", default_value_t = gateway::admission::DEFAULT_MAX_FORECAST_VALUES)]
    pub max_forecast_values: usize,
    /// Fits that run at once in this process (default: the number of cores).
    #[arg(long, env = "HORIZON_FIT_CONCURRENCY", value_parser = parse_at_least_one)]
    pub fit_concurrency: Option<usize>,
    /// MiB of fitted models the in-process worker keeps decoded in memory.
    #[arg(long, env = "HORIZON_CACHE_MIB", default_value_t = worker::DEFAULT_CACHE_MIB)]
    pub cache_mib: usize,
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
    /// Fits larger than this many values (series × points) answer 202 and
    /// run as a job (GET /v1/jobs/{id}); any fit does with `Prefer: respond-async`.
    #[arg(long, env = "HORIZON_ASYNC_POINTS", default_value_t = gateway::DEFAULT_ASYNC_POINTS)]
    pub async_points: u64,
    /// Versions kept per model: older settled versions are deleted after
    /// each new one (never the newest ready version).
    #[arg(long, env = "HORIZON_KEEP_VERSIONS", default_value_t = gateway::DEFAULT_KEEP_VERSIONS,
          value_parser = parse_at_least_one)]
    pub keep_versions: usize,
    /// How long a version that retention would delete is kept after it left
    /// the newest --keep-versions, so forecasts that chose it can read it
    /// (default: --wait-timeout + --forecast-timeout).
    #[arg(long, env = "HORIZON_PRUNE_GRACE", value_parser = parse_duration)]
    pub prune_grace: Option<Duration>,
    /// Fits of more series than this are split into shards of about this
    /// many series, fitted in parallel by every worker.
    #[arg(long, env = "HORIZON_SHARD_SERIES", default_value_t = protocol::shard::DEFAULT_SHARD_SERIES,
          value_parser = parse_at_least_one)]
    pub shard_series: usize,
    /// Fits of more values (all series' points) than this are split into
    /// shards of about this many values.
    #[arg(long, env = "HORIZON_SHARD_POINTS", default_value_t = protocol::shard::DEFAULT_SHARD_POINTS,
          value_parser = parse_at_least_one)]
    pub shard_points: usize,
    #[command(flatten)]
    pub cluster: crate::distributed::ClusterArgs,
    #[command(flatten)]
    pub security: SecurityArgs,
}

/// API keys, quotas and HTTPS of `horizon serve`.
#[derive(Args, Debug)]
pub struct SecurityArgs {
    /// A key that reaches the default tenant's models (those of a server
    /// without keys) with no quotas; once set, every request needs a key.
    /// At least 32 characters.
    #[arg(long, env = "HORIZON_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Serve a non-loopback --listen address with no API key configured.
    #[arg(long, env = "HORIZON_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// Requests per second each tenant may make (bursts of one second's worth).
    #[arg(long, env = "HORIZON_TENANT_RPS", value_parser = parse_rate)]
    pub tenant_rps: Option<f64>,
    /// Series each tenant may store (over its versions that did not fail).
    #[arg(long, env = "HORIZON_TENANT_MAX_SERIES")]
    pub tenant_max_series: Option<u64>,
    /// Bytes of fitted models each tenant may store.
    #[arg(long, env = "HORIZON_TENANT_MAX_BYTES")]
    pub tenant_max_bytes: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "HORIZON_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "HORIZON_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl SecurityArgs {
    fn quotas(&self) -> gateway::Quotas {
        gateway::Quotas {
            requests_per_sec: self.tenant_rps,
            max_series: self.tenant_max_series,
            max_bytes: self.tenant_max_bytes,
        }
    }
}

/// A request rate: a positive, finite number (0 would not block, it would
/// read as no limit).
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "'{s}' is not a positive number of requests per second (leave it out for no limit)"
        )),
    }
}

fn parse_at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("must be a whole number, 1 or more, got '{s}'")),
    }
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
            bulk_body_limit: self.max_bulk_body_bytes,
            admission: gateway::AdmissionConfig {
                max_fits: self.max_fits,
                max_forecasts: self.max_forecasts,
                body_budget: self.body_budget_bytes,
                max_forecast_values: self.max_forecast_values,
            },
            connections: gateway::ConnectionLimits {
                max_connections: connection_cap(self.max_connections),
                header_timeout: self.header_timeout,
                body_timeout: self.body_timeout,
            },
            async_points: self.async_points,
            keep_versions: self.keep_versions,
            prune_grace: self
                .prune_grace
                .unwrap_or(self.wait_timeout + self.forecast_timeout),
            shard_sizes: protocol::shard::ShardSizes {
                series: self.shard_series,
                points: self.shard_points,
            },
        }
    }
}

/// File descriptors kept for everything but HTTP connections (store,
/// broker, logs, blocking work).
const RESERVED_FDS: u64 = 128;

/// `wanted` connections, or fewer if the open-files limit is lower: running
/// out of descriptors would stop `accept`, and with it `/healthz`.
fn connection_cap(wanted: usize) -> usize {
    let Some(limit) = open_files_limit() else {
        return wanted;
    };
    let room = usize::try_from(limit.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX);
    if room < wanted {
        tracing::warn!(
            wanted,
            open_files_limit = limit,
            "lowering --max-connections to {room} to stay under the open-files limit (ulimit -n)"
        );
    }
    wanted.min(room)
}

/// The soft RLIMIT_NOFILE, read from /proc (Linux); `None` elsewhere.
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(args));
    // A fit still running on a blocking thread (an async job, or a request
    // that timed out) could not record its outcome in the closed store: it
    // must not hold up the exit; its version is failed as interrupted on
    // restart.
    runtime.shutdown_timeout(Duration::from_millis(500));
    tracing::info!("stopped");
    result
}

/// Logs to stderr, filtered by `RUST_LOG` (default: info).
pub(crate) fn init_logging() {
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
    if let Some(broker) = &args.broker {
        transport::amqp::check_uri(broker).map_err(|e| anyhow::anyhow!("--broker: {e}"))?;
    }
    let role = match args.broker {
        Some(_) => crate::metrics_exporter::Role::Gateway,
        None => crate::metrics_exporter::Role::Both,
    };
    crate::metrics_exporter::install(role)?;
    crate::worker_cmd::warn_if_cache_series_set();
    let sec = &args.security;
    if sec.admin_key.as_ref().is_some_and(|k| k.trim().len() < 32) {
        anyhow::bail!(
            "HORIZON_ADMIN_KEY must be at least 32 characters (e.g. `openssl rand -hex 32`)"
        );
    }
    // Read before anything listens: a bad certificate is a startup error.
    let tls = match (&sec.tls_cert, &sec.tls_key) {
        (Some(cert), Some(key)) => Some(gateway::tls::server_config(cert, key)?),
        _ => None,
    };
    let (store, keys) = build_store(&args).await?;
    // Clients send the key trimmed (a Bearer value), so it is kept trimmed:
    // a trailing newline from a secrets file must not lock everyone out.
    let admin_key = sec.admin_key.as_deref().map(str::trim);
    let auth = gateway::Auth::new(keys, admin_key, sec.quotas());
    let keys_required = auth.required().await.context("reading the API keys")?;
    if !args.listen.ip().is_loopback() && !keys_required && !sec.insecure_no_auth {
        anyhow::bail!(
            "refusing to serve {} without API keys: anyone reaching it could read and overwrite every model. \
             Create a key (`horizon keys create --tenant NAME`), set HORIZON_ADMIN_KEY, \
             or pass --insecure-no-auth",
            args.listen
        );
    }
    let transport = crate::fault::gateway_transport(build_transport(&args, store.clone()));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests and scripts read this line to find the port when --listen ends in :0.
    match &args.store {
        // Distributed: the data directory is not used.
        Some(_) => tracing::info!(keys_required, "listening on {scheme}://{addr}"),
        None => {
            tracing::info!(data_dir = %args.data_dir.display(), keys_required, "listening on {scheme}://{addr}")
        }
    }

    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let state = AppState::new(store.clone(), transport, args.gateway_config()).with_auth(auth);
    match tls {
        Some(tls) => gateway::tls::serve_tls(listener, tls, state, shutdown)
            .await
            .context("serving HTTPS")?,
        None => gateway::serve(listener, state, shutdown)
            .await
            .context("serving HTTP")?,
    }
    store.close().await;
    Ok(())
}

/// The model registry (the embedded SQLite store in `--data-dir`) and its API keys.
async fn build_store(
    args: &ServeArgs,
) -> anyhow::Result<(Arc<dyn ModelStore>, Arc<dyn store::KeyStore>)> {
    if let Some(url) = &args.store {
        return crate::distributed::gateway_store(&args.cluster, url).await;
    }
    let store = SqliteStore::open(&args.data_dir)
        .await
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    tracing::info!(path = %store.path().display(), "embedded store open");
    let keys = Arc::new(store.keys());
    Ok((Arc::new(store), keys))
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
            args.cache_mib,
            store,
        );
    }
    let worker = worker::Worker::with_cache_mib(store, args.cache_mib);
    // Test-only faults (e.g. a slow worker, so a test can restart the
    // service or cancel a job while a fit runs); production sets none.
    let worker: Arc<dyn transport::JobHandler> = match crate::fault::Faults::from_env() {
        Some(faults) => Arc::new(faults.around(worker)),
        None => Arc::new(worker),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fit_slots = args.fit_concurrency.unwrap_or(cores).max(1);
    Arc::new(InProcessTransport::new(worker, fit_slots, 4 * cores))
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn a_request_rate_is_a_positive_finite_number() {
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
