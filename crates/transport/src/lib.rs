//! How jobs travel from the gateway to workers and answers come back.
//!
//! The gateway holds a [`Transport`]; workers implement [`JobHandler`]. Fits
//! and forecasts travel separately so that a burst of fits cannot starve
//! forecasts.

pub mod amqp;
pub mod in_process;

pub use in_process::InProcessTransport;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, FuturesOrdered, StreamExt};
use protocol::{
    BacktestJob, BacktestReply, FitJob, FitReply, ForecastJob, ForecastReply, JobError, ModelName,
    Version,
};
use thiserror::Error;

/// The job could not be delivered or its answer did not come back.
#[derive(Debug, Clone, Error)]
pub enum TransportError {
    #[error("no worker answered within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the transport is unavailable: {0}")]
    Unavailable(String),
    #[error("the job was rejected after repeated failures: {0}")]
    DeadLettered(String),
    #[error("transport error: {0}")]
    Internal(String),
    /// The job (or its answer) is larger than the transport carries.
    #[error(
        "the job would travel as a {bytes}-byte message, over the broker's limit of {limit} bytes"
    )]
    TooLarge { bytes: usize, limit: usize },
}

/// The gateway's side: send a job, wait for its answer.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    async fn fit(&self, job: FitJob) -> Result<FitReply, TransportError>;
    /// Sends the shards of one version's fit (see [`protocol::shard`]), each
    /// a fit any worker may take, and waits for every answer (in shard
    /// order, one per shard; each without its series, see
    /// [`without_series`]). The shards are taken from `shards` one at a
    /// time and let go once sent, so that a fit of any size is never held
    /// whole. By default each is an ordinary [`Self::fit`], at most
    /// [`SHARDS_IN_FLIGHT`] at once.
    async fn fit_shards(&self, shards: FitShards) -> Vec<Result<FitReply, TransportError>> {
        shards.fit_each(SHARDS_IN_FLIGHT, |job| self.fit(job)).await
    }
    async fn forecast(&self, job: ForecastJob) -> Result<ForecastReply, TransportError>;
    /// Runs a backtest on a worker (CPU-heavy like a fit: the fit lane).
    async fn backtest(&self, _job: BacktestJob) -> Result<BacktestReply, TransportError> {
        Err(TransportError::Unavailable(
            "this transport does not carry backtests".into(),
        ))
    }
    /// Checks that jobs can be delivered now.
    async fn ready(&self) -> Result<(), TransportError>;
    /// Refuses a fit this transport cannot carry (e.g. larger than the
    /// broker accepts), so that it is refused before its version is
    /// registered. `job.version` may be a placeholder. Measuring a large
    /// job takes CPU time: call it off the async threads.
    fn check_fit(&self, _job: &FitJob) -> Result<(), TransportError> {
        Ok(())
    }
    /// The workers listening for fits and for forecasts now, when the
    /// transport can tell (`None`: it cannot, e.g. in-process workers,
    /// which are there as long as the process is).
    /// `fresh`: ask the broker now rather than answer a count read a
    /// moment ago (readiness must not report workers that just died).
    async fn consumers(&self, _fresh: bool) -> Result<Option<Consumers>, TransportError> {
        Ok(None)
    }
}

/// A shard's answer without its per-series summary, which the store keeps
/// (a fit in shards is answered from there): held until every shard has
/// answered, the summaries would grow with the fit's series.
pub fn without_series(reply: FitReply) -> FitReply {
    reply.map(|summary| protocol::FitSummary {
        series: Vec::new(),
        ..summary
    })
}

/// Shards of one fit taken from their source at once by the default
/// [`Transport::fit_shards`]: what it holds of a fit at most.
pub const SHARDS_IN_FLIGHT: usize = 4;

/// The shards of one version's fit, taken one at a time (read from a spool,
/// or from memory): the source [`Transport::fit_shards`] pulls from. A
/// shard that cannot be had is an error in its place.
pub struct FitShards {
    model: ModelName,
    version: Version,
    count: usize,
    jobs: BoxStream<'static, Result<FitJob, TransportError>>,
}

impl FitShards {
    /// `count` shards of version `version` of `model`, as `jobs` yields
    /// them (in shard order; a missing one is taken for an error).
    pub fn new(
        model: ModelName,
        version: Version,
        count: usize,
        jobs: BoxStream<'static, Result<FitJob, TransportError>>,
    ) -> Self {
        Self {
            model,
            version,
            count,
            jobs,
        }
    }

    /// Shards of version `version` of `model` already in memory.
    pub fn from_jobs(model: ModelName, version: Version, jobs: Vec<FitJob>) -> Self {
        let count = jobs.len();
        Self::new(
            model,
            version,
            count,
            futures_util::stream::iter(jobs.into_iter().map(Ok)).boxed(),
        )
    }

    pub fn model(&self) -> &ModelName {
        &self.model
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// How many shards.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The next shard; once `count` were given, `None`; a source that ends
    /// early gives an error for each shard it did not.
    pub async fn next(&mut self) -> Option<Result<FitJob, TransportError>> {
        if self.count == 0 {
            return None;
        }
        self.count -= 1;
        Some(self.jobs.next().await.unwrap_or_else(|| {
            Err(TransportError::Internal(
                "a shard of the fit is missing".into(),
            ))
        }))
    }

    /// Every shard through `fit`, at most `at_once` at a time, the answers
    /// in shard order.
    pub async fn fit_each<'a, F, Fut>(
        mut self,
        at_once: usize,
        fit: F,
    ) -> Vec<Result<FitReply, TransportError>>
    where
        F: Fn(FitJob) -> Fut + Send + Sync + 'a,
        Fut: std::future::Future<Output = Result<FitReply, TransportError>> + Send + 'a,
    {
        let mut running = FuturesOrdered::new();
        let mut out = Vec::with_capacity(self.count);
        loop {
            while running.len() < at_once.max(1) {
                let sent: BoxFuture<'a, _> = match self.next().await {
                    Some(Ok(job)) => {
                        let reply = fit(job);
                        Box::pin(async move { reply.await.map(without_series) })
                    }
                    Some(Err(e)) => Box::pin(futures_util::future::ready(Err(e))),
                    None => break,
                };
                running.push_back(sent);
            }
            match running.next().await {
                Some(reply) => out.push(reply),
                None => return out,
            }
        }
    }
}

/// How many consumers each job queue has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumers {
    pub fit: u32,
    pub forecast: u32,
}

/// The worker's side: do a job, produce its answer.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn fit(&self, job: FitJob) -> FitReply;
    async fn forecast(&self, job: ForecastJob) -> ForecastReply;
    async fn backtest(&self, _job: BacktestJob) -> BacktestReply {
        Err(JobError::Failed(
            "this worker does not run backtests".into(),
        ))
    }
}
