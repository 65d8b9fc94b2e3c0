//! The in-process transport: jobs go straight to a [`JobHandler`] in the same
//! process, on tokio tasks.
//!
//! Fits and forecasts have separate lanes. Fits are CPU-heavy, so at most
//! `fit_slots` run at once and the rest queue; forecasts have their own,
//! larger lane and never queue behind fits. Each fit runs on its own task,
//! so it keeps running (and its version settles) even if the caller that
//! sent it goes away. A forecast changes nothing, so it runs in the caller's
//! task (no hand-off to another task and back); a panic in it is still
//! caught and answered as an error.

use crate::{FitShards, JobHandler, Transport, TransportError};
use async_trait::async_trait;
use futures_util::FutureExt;
use protocol::{BacktestJob, BacktestReply, FitJob, FitReply, ForecastJob, ForecastReply};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Sends jobs to a handler in this process.
pub struct InProcessTransport {
    handler: Arc<dyn JobHandler>,
    fit_lane: Arc<Semaphore>,
    /// Fits run at once.
    fit_slots: usize,
    forecast_lane: Arc<Semaphore>,
}

impl InProcessTransport {
    /// `fit_slots` fits run at once (the number of cores is a good choice);
    /// `forecast_slots` forecasts run at once, independently of fits.
    pub fn new(handler: Arc<dyn JobHandler>, fit_slots: usize, forecast_slots: usize) -> Self {
        Self {
            handler,
            fit_lane: Arc::new(Semaphore::new(fit_slots.max(1))),
            fit_slots: fit_slots.max(1),
            forecast_lane: Arc::new(Semaphore::new(forecast_slots.max(1))),
        }
    }

    /// One fit slot per core and four forecast slots per core.
    pub fn with_default_lanes(handler: Arc<dyn JobHandler>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(handler, cores, 4 * cores)
    }
}

/// Runs `work` on its own task once `lane` has a free slot.
async fn run_in_lane<T, F>(lane: &Arc<Semaphore>, work: F) -> Result<T, TransportError>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let lane = lane.clone();
    let task = tokio::spawn(async move {
        let _slot = lane
            .acquire_owned()
            .await
            .map_err(|_| TransportError::Unavailable("the transport is shut down".into()))?;
        Ok(work.await)
    });
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(TransportError::Internal("the worker panicked".into())),
        Err(_) => Err(TransportError::Unavailable("the job was cancelled".into())),
    }
}

#[async_trait]
impl Transport for InProcessTransport {
    async fn fit(&self, job: FitJob) -> Result<FitReply, TransportError> {
        let handler = self.handler.clone();
        run_in_lane(&self.fit_lane, async move { handler.fit(job).await }).await
    }

    /// As many shards at once as fits run, and one ready for the next free
    /// slot: a fit of any size holds that many shards at most.
    async fn fit_shards(&self, shards: FitShards) -> Vec<Result<FitReply, TransportError>> {
        shards
            .fit_each(self.fit_slots + 1, |job| self.fit(job))
            .await
    }

    async fn backtest(&self, job: BacktestJob) -> Result<BacktestReply, TransportError> {
        let handler = self.handler.clone();
        run_in_lane(&self.fit_lane, async move { handler.backtest(job).await }).await
    }

    async fn forecast(&self, job: ForecastJob) -> Result<ForecastReply, TransportError> {
        let _slot = self
            .forecast_lane
            .acquire()
            .await
            .map_err(|_| TransportError::Unavailable("the transport is shut down".into()))?;
        AssertUnwindSafe(self.handler.forecast(job))
            .catch_unwind()
            .await
            .map_err(|_| TransportError::Internal("the worker panicked".into()))
    }

    async fn ready(&self) -> Result<(), TransportError> {
        if self.fit_lane.is_closed() || self.forecast_lane.is_closed() {
            return Err(TransportError::Unavailable(
                "the in-process transport is shut down".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Horizon, SeriesData};
    use protocol::{FitSummary, ForecastResult, JobError, ModelName, NamedSeries};
    use std::time::Duration;

    /// Fits block until the gate opens; forecasts answer at once.
    struct Gated {
        gate: Semaphore,
    }

    #[async_trait]
    impl JobHandler for Gated {
        async fn fit(&self, job: FitJob) -> FitReply {
            let _open = self.gate.acquire().await;
            Ok(FitSummary {
                model: job.model,
                version: job.version,
                method: job.spec.method,
                series: vec![],
                base: None,
            })
        }

        async fn forecast(&self, job: ForecastJob) -> ForecastReply {
            if job.version < 0 {
                return Err(JobError::Invalid("negative".into()));
            }
            Ok(ForecastResult {
                model: job.model,
                version: job.version,
                series: vec![],
            })
        }
    }

    /// Forecasts panic.
    struct Panics;

    #[async_trait]
    impl JobHandler for Panics {
        async fn fit(&self, job: FitJob) -> FitReply {
            Err(JobError::Invalid(format!("no fits here ({})", job.version)))
        }

        async fn forecast(&self, job: ForecastJob) -> ForecastReply {
            panic!("forecast {} panicked", job.version)
        }
    }

    #[tokio::test]
    async fn a_panicking_forecast_is_an_error_and_frees_its_slot() {
        let transport = InProcessTransport::new(Arc::new(Panics), 1, 1);
        for version in 0..3 {
            let job = ForecastJob {
                model: ModelName::default_model(),
                version,
                horizon: Horizon::parse(1).unwrap(),
                levels: vec![],
                series_ids: None,
                shard: None,
            };
            let reply = tokio::time::timeout(Duration::from_secs(10), transport.forecast(job))
                .await
                .expect("the slot of a panicked forecast is given back");
            assert!(
                matches!(reply, Err(TransportError::Internal(_))),
                "{reply:?}"
            );
        }
        transport.ready().await.unwrap();
    }

    fn fit_job(version: i64) -> FitJob {
        FitJob {
            shard: None,
            base: None,
            model: ModelName::default_model(),
            version,
            spec: engine::ModelSpec::new(Default::default(), None),
            series: vec![NamedSeries {
                id: "a".into(),
                values: SeriesData::parse(vec![1.0, 2.0, 3.0]).unwrap(),
                calendar: None,
                index: None,
            }],
        }
    }

    #[tokio::test]
    async fn forecasts_do_not_queue_behind_fits() {
        let handler = Arc::new(Gated {
            gate: Semaphore::new(0),
        });
        let transport = Arc::new(InProcessTransport::new(handler.clone(), 1, 1));
        // More fits than fit slots: one runs (blocked), the rest queue.
        let fits: Vec<_> = (1..=4)
            .map(|v| {
                let t = transport.clone();
                tokio::spawn(async move { t.fit(fit_job(v)).await })
            })
            .collect();
        for v in 0..3 {
            let job = ForecastJob {
                model: ModelName::default_model(),
                version: v,
                horizon: Horizon::parse(1).unwrap(),
                levels: vec![],
                series_ids: None,
                shard: None,
            };
            let reply = tokio::time::timeout(Duration::from_secs(10), transport.forecast(job))
                .await
                .expect("a forecast must not wait for the blocked fits")
                .unwrap()
                .unwrap();
            assert_eq!(reply.version, v);
        }
        assert!(fits.iter().all(|f| !f.is_finished()));
        handler.gate.add_permits(4);
        for (i, fit) in fits.into_iter().enumerate() {
            let summary = fit.await.unwrap().unwrap().unwrap();
            assert_eq!(summary.version, i as i64 + 1);
        }
        transport.ready().await.unwrap();
    }
}
