//! `horizon worker`: a worker process that takes jobs from the broker, keeps
//! fitted models in PostgreSQL and in its memory cache, and answers. Start as
//! many as you like, anywhere that reaches the broker and the database; stop
//! any at any time (a job it held is redelivered to another).

use crate::distributed::ClusterArgs;
use crate::fault::Faults;
use clap::Args;
use std::sync::Arc;
use store::ModelStore;
use transport::amqp::run_worker;
use transport::JobHandler;
use worker::Redeliverable;

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The RabbitMQ broker, e.g. amqp://guest:guest@127.0.0.1:5672/%2f
    #[arg(long, env = "HORIZON_BROKER")]
    pub broker: String,
    /// The PostgreSQL model registry, e.g. postgres://postgres@127.0.0.1:5432/horizon
    #[arg(long, env = "HORIZON_STORE")]
    pub store: String,
    /// MiB of fitted models kept decoded in the memory cache.
    #[arg(long, env = "HORIZON_CACHE_MIB", default_value_t = worker::DEFAULT_CACHE_MIB)]
    pub cache_mib: usize,
    /// Serve this worker's Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9101.
    #[arg(long, env = "HORIZON_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

pub fn run(args: WorkerArgs) -> anyhow::Result<()> {
    // Does nothing if logging was set up already.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(work(args))
}

/// Says that `HORIZON_CACHE_SERIES` (the cache in series, before it was
/// sized in bytes) is no longer read, so a deployment that still sets it
/// learns why its setting has no effect.
pub(crate) fn warn_if_cache_series_set() {
    if std::env::var_os("HORIZON_CACHE_SERIES").is_some() {
        tracing::warn!(
            "HORIZON_CACHE_SERIES is no longer read: the model cache is sized in MiB \
             (--cache-mib, HORIZON_CACHE_MIB)"
        );
    }
}

async fn work(args: WorkerArgs) -> anyhow::Result<()> {
    args.cluster.check()?;
    transport::amqp::check_uri(&args.broker).map_err(|e| anyhow::anyhow!("--broker: {e}"))?;
    warn_if_cache_series_set();
    if let Some(addr) = args.metrics_listen {
        crate::metrics_exporter::serve_worker_metrics(addr).await?;
    }
    let amqp = args.cluster.amqp(&args.broker);
    let pg = args.cluster.connect_store(&args.store).await?;
    let store: Arc<dyn ModelStore> = pg.clone();
    let inner = worker::Worker::with_cache_mib(store.clone(), args.cache_mib);
    let redeliverable = Redeliverable::new(inner, store.clone());
    let handler: Arc<dyn JobHandler> = match Faults::from_env() {
        Some(faults) => Arc::new(faults.around(redeliverable)),
        None => Arc::new(redeliverable),
    };
    tracing::info!(namespace = %amqp.namespace, "worker starting");
    let shutdown = gateway::Shutdown::new();
    shutdown.trigger_on_signals();
    run_worker(amqp, handler, Some(store.clone()), async move {
        shutdown.wait().await
    })
    .await;
    store.close().await;
    Ok(())
}
