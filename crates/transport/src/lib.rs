//! How jobs travel from the gateway to workers and answers come back.
//!
//! The gateway holds a [`Transport`]; workers implement [`JobHandler`]. Fits
//! and forecasts travel separately so that a burst of fits cannot starve
//! forecasts.

pub mod amqp;
pub mod in_process;

pub use in_process::InProcessTransport;

use async_trait::async_trait;
use protocol::{
    BacktestJob, BacktestReply, FitJob, FitReply, ForecastJob, ForecastReply, JobError,
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
    /// a fit any worker may take, and waits for every answer (in the order
    /// of `shards`). By default each is an ordinary [`Self::fit`], all at once.
    async fn fit_shards(&self, shards: Vec<FitJob>) -> Vec<Result<FitReply, TransportError>> {
        futures_util::future::join_all(shards.into_iter().map(|job| self.fit(job))).await
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
