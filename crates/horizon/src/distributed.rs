//! The distributed mode's shared plumbing: the broker and store options of
//! `serve` and `worker`, connecting to PostgreSQL with retries, the worker
//! wrapper that answers redelivered fits from the store, and the test-only
//! fault injection.

use anyhow::Context;
use async_trait::async_trait;
use clap::Args;
use protocol::{FitJob, FitReply, ForecastJob, ForecastReply, JobError};
use std::sync::Arc;
use std::time::Duration;
use store::postgres::{PgConfig, PgStore};
use store::{ModelStore, StoreError, VersionStatus};
use transport::amqp::{run_worker, AmqpTransport};
use transport::amqp::{validate_namespace, AmqpConfig};
use transport::{JobHandler, Transport};

/// Names the environment variable that makes a worker abort when it takes a
/// fit of this model: a test-only hook to play a job that crashes workers.
pub const FAULT_ABORT_ENV: &str = "HORIZON_FAULT_ABORT_ON_MODEL";
/// Names the environment variable that makes a worker wait this many
/// milliseconds before each job: a test-only hook for a slow worker, so a
/// worker killed in a test surely holds jobs.
pub const FAULT_DELAY_ENV: &str = "HORIZON_FAULT_DELAY_MS";

/// Options shared by `horizon serve --broker ...` and `horizon worker`.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Prefix of the broker's exchanges and queues and name of the
    /// PostgreSQL schema: deployments sharing a broker and a database are
    /// kept apart by it.
    #[arg(long, env = "HORIZON_NAMESPACE", default_value = "horizon")]
    pub namespace: String,
    /// Connections to PostgreSQL per process.
    #[arg(long, env = "HORIZON_DB_CONNECTIONS", default_value_t = 16)]
    pub db_connections: u32,
    /// Send forecasts as persistent messages with publisher confirms.
    #[arg(long, env = "HORIZON_PERSISTENT_FORECASTS")]
    pub persistent_forecasts: bool,
    /// Unacknowledged fits a worker holds at a time.
    #[arg(long, env = "HORIZON_FIT_PREFETCH", default_value_t = 2)]
    pub fit_prefetch: u16,
    /// Unacknowledged forecast messages (each a batch) a worker holds at a time.
    #[arg(long, env = "HORIZON_FORECAST_PREFETCH", default_value_t = 128)]
    pub forecast_prefetch: u16,
    /// Most forecasts the gateway sends in one message: it sends whatever
    /// waits as soon as one of its two send slots is free, so batches grow
    /// with the load; 1 sends every forecast alone.
    #[arg(long, env = "HORIZON_FORECAST_BATCH", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub forecast_batch: u16,
    /// Versions pending for longer than this are marked failed by the
    /// gateway (their fit was lost, e.g. its gateway died before sending it).
    #[arg(long, env = "HORIZON_PENDING_TTL", default_value = "15m", value_parser = crate::serve::parse_duration)]
    pub pending_ttl: Duration,
}

impl ClusterArgs {
    /// The broker settings; the namespace must have been checked (see
    /// [`Self::check`]).
    pub fn amqp(&self, broker: &str) -> AmqpConfig {
        let mut cfg = AmqpConfig::new(broker, &self.namespace);
        cfg.persistent_forecasts = self.persistent_forecasts;
        cfg.fit_prefetch = self.fit_prefetch;
        cfg.forecast_prefetch = self.forecast_prefetch;
        cfg.forecast_batch = usize::from(self.forecast_batch);
        cfg
    }

    pub fn check(&self) -> anyhow::Result<()> {
        validate_namespace(&self.namespace).map_err(anyhow::Error::msg)
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

/// Wraps the worker for at-least-once delivery: a fit whose version is
/// already settled (a redelivery, or a version failed meanwhile) is answered
/// from the store instead of being fitted again, so it can neither create a
/// second result nor contradict the store.
pub struct Redeliverable<H> {
    pub inner: H,
    pub store: Arc<dyn ModelStore>,
    /// Test-only: abort the process on a fit of this model.
    pub abort_on_model: Option<String>,
    /// Test-only: wait this long before each job.
    pub delay: Option<Duration>,
}

/// How long a worker keeps retrying while the store is unreachable, holding
/// the job unacknowledged.
const STORE_RETRY_FOR: Duration = Duration::from_secs(120);

impl<H> Redeliverable<H> {
    /// The version's status, retrying while the store is unreachable.
    async fn status(&self, job: &FitJob) -> Result<Option<FitReply>, JobError> {
        let deadline = tokio::time::Instant::now() + STORE_RETRY_FOR;
        let mut nap = Duration::from_millis(200);
        loop {
            match self
                .store
                .wait_settled(&job.model, job.version, Duration::ZERO)
                .await
            {
                Ok(info) => {
                    return Ok(match info.status {
                        VersionStatus::Ready => Some(info.summary.ok_or_else(|| {
                            JobError::Failed(format!(
                                "version {} of '{}' is ready but has no summary",
                                job.version, job.model
                            ))
                        })),
                        VersionStatus::Failed { reason } => Some(Err(JobError::Failed(reason))),
                        VersionStatus::Pending => None,
                    })
                }
                Err(StoreError::WaitTimeout(_)) => return Ok(None),
                Err(StoreError::Unavailable(e)) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(
                        "store unavailable, fit of '{}' v{} waits: {e}",
                        job.model,
                        job.version
                    );
                    tokio::time::sleep(nap).await;
                    nap = (nap * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    return Err(JobError::Failed(format!(
                        "reading version {} of '{}': {e}",
                        job.version, job.model
                    )))
                }
            }
        }
    }
}

#[async_trait]
impl<H: JobHandler> JobHandler for Redeliverable<H> {
    async fn fit(&self, job: FitJob) -> FitReply {
        if self
            .abort_on_model
            .as_deref()
            .is_some_and(|m| m == job.model.as_str())
        {
            tracing::error!(model = %job.model, "fault injection: aborting the worker");
            std::process::abort();
        }
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        let mut last = None;
        for attempt in 0..3 {
            // The store has the last word: a settled version is answered as
            // it stands, whatever this worker would compute.
            if let Some(answer) = self.status(&job).await? {
                if attempt == 0 {
                    tracing::info!(
                        model = %job.model,
                        version = job.version,
                        "fit already settled (a redelivery): answered from the store"
                    );
                }
                return answer;
            }
            if let Some(previous) = last.take() {
                tracing::warn!(
                    attempt,
                    "the fit could not be recorded ({previous:?}); fitting again"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            last = Some(self.inner.fit(job.clone()).await);
        }
        if let Some(answer) = self.status(&job).await? {
            return answer;
        }
        last.unwrap_or_else(|| Err(JobError::Failed("the fit was not recorded".to_string())))
    }

    async fn forecast(&self, job: ForecastJob) -> ForecastReply {
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        self.inner.forecast(job).await
    }
}

// ---------------------------------------------------- `horizon serve --broker`

/// The gateway's store in distributed mode: PostgreSQL, plus a background
/// sweep that fails versions left pending longer than `--pending-ttl`.
pub async fn gateway_store(
    cluster: &ClusterArgs,
    url: &str,
) -> anyhow::Result<Arc<dyn ModelStore>> {
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
    Ok(pg)
}

/// The gateway's transport in distributed mode: RabbitMQ, plus `workers`
/// in-process workers consuming from the same broker.
pub fn gateway_transport(
    cluster: &ClusterArgs,
    broker: &str,
    fit_timeout: Duration,
    forecast_timeout: Duration,
    workers: usize,
    cache_series: usize,
    store: Arc<dyn ModelStore>,
) -> Arc<dyn Transport> {
    let mut cfg = cluster.amqp(broker);
    cfg.fit_timeout = fit_timeout;
    cfg.forecast_timeout = forecast_timeout;
    if workers > 0 {
        let handler = Arc::new(Redeliverable {
            inner: worker::Worker::with_cache(store.clone(), cache_series),
            store: store.clone(),
            abort_on_model: None,
            delay: None,
        });
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
