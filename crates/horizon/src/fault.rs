//! Test-only fault injection, switched on by environment variables that
//! production never sets: a worker that aborts on a given fit (a job that
//! crashes workers) or that is slow (so a worker killed in a test surely
//! holds jobs); a gateway that dies between registering a fit's version
//! and sending the fit.

use async_trait::async_trait;
use protocol::{FitJob, FitReply, ForecastJob, ForecastReply};
use std::sync::Arc;
use std::time::Duration;
use transport::{FitShards, JobHandler, Transport, TransportError};

/// Names the environment variable that makes a worker abort when it takes a
/// fit of this model; `model#i`: only shard `i` (0-based) of a sharded fit.
pub const ABORT_ON_MODEL_ENV: &str = "HORIZON_FAULT_ABORT_ON_MODEL";
/// Names the environment variable that makes a worker wait this many
/// milliseconds before each job.
pub const DELAY_MS_ENV: &str = "HORIZON_FAULT_DELAY_MS";
/// Names the environment variable that makes a gateway abort (like a
/// `kill -9`) when it is about to send a fit of this model: its version is
/// registered, its fit never sent.
pub const ABORT_BEFORE_DISPATCH_ENV: &str = "HORIZON_FAULT_ABORT_BEFORE_DISPATCH";

/// The faults asked for by the environment.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    abort_on_model: Option<String>,
    delay: Option<Duration>,
}

impl Faults {
    /// Reads the environment; `None` when no fault is asked for.
    pub fn from_env() -> Option<Self> {
        let abort_on_model = std::env::var(ABORT_ON_MODEL_ENV)
            .ok()
            .filter(|m| !m.is_empty());
        let delay = std::env::var(DELAY_MS_ENV)
            .ok()
            .and_then(|ms| ms.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        if let Some(m) = &abort_on_model {
            tracing::warn!("fault injection on: this worker aborts on a fit of model '{m}'");
        }
        if let Some(d) = delay {
            tracing::warn!("fault injection on: this worker waits {d:?} before each job");
        }
        (abort_on_model.is_some() || delay.is_some()).then_some(Self {
            abort_on_model,
            delay,
        })
    }

    /// Wraps `inner` so that it plays these faults.
    pub fn around<H>(self, inner: H) -> Faulty<H> {
        Faulty {
            inner,
            faults: self,
        }
    }
}

impl Faults {
    fn aborts_on(&self, job: &FitJob) -> bool {
        let Some(target) = self.abort_on_model.as_deref() else {
            return false;
        };
        match target.split_once('#') {
            None => target == job.model.as_str(),
            Some((model, shard)) => {
                model == job.model.as_str()
                    && job
                        .shard
                        .is_some_and(|s| shard.parse::<u32>().ok() == Some(s.index))
            }
        }
    }
}

/// A job handler that plays [`Faults`] before handing jobs on.
pub struct Faulty<H> {
    inner: H,
    faults: Faults,
}

#[async_trait]
impl<H: JobHandler> JobHandler for Faulty<H> {
    async fn fit(&self, job: FitJob) -> FitReply {
        if self.faults.aborts_on(&job) {
            tracing::error!(model = %job.model, "fault injection: aborting the worker");
            std::process::abort();
        }
        if let Some(d) = self.faults.delay {
            tokio::time::sleep(d).await;
        }
        self.inner.fit(job).await
    }

    async fn forecast(&self, job: ForecastJob) -> ForecastReply {
        if let Some(d) = self.faults.delay {
            tokio::time::sleep(d).await;
        }
        self.inner.forecast(job).await
    }

    async fn backtest(&self, job: protocol::BacktestJob) -> protocol::BacktestReply {
        self.inner.backtest(job).await
    }
}

/// The gateway's transport, wrapped to abort the process when it is handed
/// a fit of the model named by [`ABORT_BEFORE_DISPATCH_ENV`]; the transport
/// itself when that is not set.
pub fn gateway_transport(inner: Arc<dyn Transport>) -> Arc<dyn Transport> {
    match std::env::var(ABORT_BEFORE_DISPATCH_ENV) {
        Ok(model) if !model.is_empty() => {
            tracing::warn!(
                "fault injection on: this gateway aborts before sending a fit of model '{model}'"
            );
            Arc::new(AbortBeforeDispatch { inner, model })
        }
        _ => inner,
    }
}

struct AbortBeforeDispatch {
    inner: Arc<dyn Transport>,
    model: String,
}

#[async_trait]
impl Transport for AbortBeforeDispatch {
    async fn fit(&self, job: FitJob) -> Result<FitReply, TransportError> {
        if job.model.as_str() == self.model {
            tracing::error!(model = %job.model, version = job.version, "fault injection: aborting the gateway before sending the fit");
            std::process::abort();
        }
        self.inner.fit(job).await
    }

    async fn fit_shards(&self, shards: FitShards) -> Vec<Result<FitReply, TransportError>> {
        if shards.model().as_str() == self.model {
            tracing::error!(model = %shards.model(), version = shards.version(), "fault injection: aborting the gateway before sending the fit's shards");
            std::process::abort();
        }
        self.inner.fit_shards(shards).await
    }

    async fn forecast(&self, job: ForecastJob) -> Result<ForecastReply, TransportError> {
        self.inner.forecast(job).await
    }

    async fn backtest(
        &self,
        job: protocol::BacktestJob,
    ) -> Result<protocol::BacktestReply, TransportError> {
        self.inner.backtest(job).await
    }

    async fn ready(&self) -> Result<(), TransportError> {
        self.inner.ready().await
    }

    fn check_fit(&self, job: &FitJob) -> Result<(), TransportError> {
        self.inner.check_fit(job)
    }

    async fn consumers(&self, fresh: bool) -> Result<Option<transport::Consumers>, TransportError> {
        self.inner.consumers(fresh).await
    }
}
