//! The distributed mode's shared plumbing: the broker and store options of
//! `serve` and `worker`, connecting to PostgreSQL with retries, and the
//! gateway's store and transport.

use anyhow::Context;
use clap::Args;
use std::sync::Arc;
use std::time::Duration;
use store::postgres::{PgConfig, PgStore};
use store::{ModelStore, StoreError};
use transport::amqp::{run_worker, AmqpTransport};
use transport::amqp::{validate_namespace, AmqpConfig};
use transport::Transport;
use worker::Redeliverable;

/// Options shared by `horizon serve --broker ...` and `horizon worker`.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Prefix of the broker's exchanges and queues and name of the
    /// PostgreSQL schema: deployments sharing a broker and a database are
    /// kept apart by it.
    #[arg(long, env = "HORIZON_NAMESPACE", default_value = "horizon")]
    pub namespace: String,
    /// Connections to PostgreSQL per process.
    #[arg(long, env = "HORIZON_DB_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_connections: u32,
    /// Send forecasts as persistent messages with publisher confirms.
    #[arg(long, env = "HORIZON_PERSISTENT_FORECASTS")]
    pub persistent_forecasts: bool,
    /// Unacknowledged fits a worker holds at a time.
    #[arg(long, env = "HORIZON_FIT_PREFETCH", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub fit_prefetch: u16,
    /// Unacknowledged forecast messages (each a batch) a worker holds at a time.
    #[arg(long, env = "HORIZON_FORECAST_PREFETCH", default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..))]
    pub forecast_prefetch: u16,
    /// Most forecasts the gateway sends in one message: it sends whatever
    /// waits as soon as one of its two send slots is free, so batches grow
    /// with the load; 1 sends every forecast alone.
    #[arg(long, env = "HORIZON_FORECAST_BATCH", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub forecast_batch: u16,
    /// Versions whose fit never reached the broker (its gateway died
    /// before the broker confirmed it), pending with no sign of life for
    /// longer than this (no worker heartbeat; workers beat every 2s while
    /// they fit), are marked failed by the gateway; a confirmed fit waits
    /// in the queue as long as it takes. At least 6s.
    #[arg(long, env = "HORIZON_PENDING_TTL", default_value = "15m", value_parser = crate::serve::parse_duration)]
    pub pending_ttl: Duration,
    /// The largest message the broker accepts (RabbitMQ's
    /// `max_message_size`: 128 MiB up to 3.13, 16 MiB from 4.0). A fit
    /// that would travel as a larger message is refused (413) before it is
    /// registered; a larger answer becomes an error.
    #[arg(long, env = "HORIZON_MAX_MESSAGE_BYTES", default_value_t = transport::amqp::DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
}

impl ClusterArgs {
    /// The defaults, in `namespace` (for commands that only open the store).
    pub fn for_namespace(namespace: &str) -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            cluster: ClusterArgs,
        }
        let mut cluster = <Defaults as clap::Parser>::parse_from(["horizon"]).cluster;
        cluster.namespace = namespace.to_string();
        cluster.db_connections = 2;
        cluster
    }

    /// The broker settings; the namespace must have been checked (see
    /// [`Self::check`]).
    pub fn amqp(&self, broker: &str) -> AmqpConfig {
        let mut cfg = AmqpConfig::new(broker, &self.namespace);
        cfg.persistent_forecasts = self.persistent_forecasts;
        cfg.fit_prefetch = self.fit_prefetch;
        cfg.forecast_prefetch = self.forecast_prefetch;
        cfg.forecast_batch = usize::from(self.forecast_batch);
        cfg.max_message_bytes = self.max_message_bytes;
        cfg
    }

    pub fn check(&self) -> anyhow::Result<()> {
        validate_namespace(&self.namespace).map_err(anyhow::Error::msg)?;
        // A fit is judged abandoned when its worker has not beaten for the
        // whole TTL: the TTL must span several beats.
        let shortest = worker::HEARTBEAT * 3;
        if self.pending_ttl < shortest {
            anyhow::bail!(
                "--pending-ttl must be at least {shortest:?} (three worker heartbeats), got {:?}",
                self.pending_ttl
            );
        }
        Ok(())
    }

    /// Connects to PostgreSQL (creating and migrating the schema), retrying
    /// with backoff while it is unreachable.
    pub async fn connect_store(&self, url: &str) -> anyhow::Result<Arc<PgStore>> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            anyhow::bail!("--store must be a postgres:// URL in distributed mode, got '{url}'");
        }
        self.check()?;
        let mut cfg = PgConfig::new(url, &self.namespace);
        cfg.max_connections = self.db_connections;
        let mut backoff = Duration::from_millis(200);
        loop {
            match PgStore::connect(&cfg).await {
                Ok(store) => return Ok(Arc::new(store)),
                Err(StoreError::Unavailable(e)) => {
                    tracing::warn!("PostgreSQL unreachable, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e).context("opening the PostgreSQL store"),
            }
        }
    }
}

// ---------------------------------------------------- `horizon serve --broker`

/// The gateway's store in distributed mode: PostgreSQL, plus a background
/// sweep that fails versions pending with no worker alive on them (no
/// heartbeat) for longer than `--pending-ttl`.
pub async fn gateway_store(
    cluster: &ClusterArgs,
    url: &str,
) -> anyhow::Result<(Arc<dyn ModelStore>, Arc<dyn store::KeyStore>)> {
    let pg = cluster.connect_store(url).await?;
    tracing::info!(schema = %cluster.namespace, "PostgreSQL store open");
    let ttl = cluster.pending_ttl;
    let sweeper = Arc::downgrade(&pg);
    tokio::spawn(async move {
        let every = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            tokio::time::sleep(every).await;
            let Some(pg) = sweeper.upgrade() else { return };
            match pg.fail_stale_pending(ttl).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    versions = n,
                    "failed versions pending for longer than {ttl:?}"
                ),
                Err(e) => tracing::debug!("sweeping stale pending versions: {e}"),
            }
        }
    });
    let keys = Arc::new(pg.keys());
    Ok((pg, keys))
}

/// The gateway's transport in distributed mode: RabbitMQ, plus `workers`
/// in-process workers consuming from the same broker.
pub fn gateway_transport(
    cluster: &ClusterArgs,
    broker: &str,
    fit_timeout: Duration,
    forecast_timeout: Duration,
    workers: usize,
    cache_mib: usize,
    store: Arc<dyn ModelStore>,
) -> Arc<dyn Transport> {
    let mut cfg = cluster.amqp(broker);
    cfg.fit_timeout = fit_timeout;
    cfg.forecast_timeout = forecast_timeout;
    if workers > 0 {
        let handler = Arc::new(Redeliverable::new(
            worker::Worker::with_cache_mib(store.clone(), cache_mib),
            store.clone(),
        ));
        for _ in 0..workers {
            tokio::spawn(run_worker(
                cfg.clone(),
                handler.clone(),
                None,
                std::future::pending(),
            ));
        }
        tracing::info!(workers, "in-process workers consume from the broker");
    }
    tracing::info!(namespace = %cfg.namespace, "gateway uses the broker");
    Arc::new(AmqpTransport::start(cfg, Some(store)))
}
