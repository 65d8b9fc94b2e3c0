//! At-least-once delivery on the worker's side: a redelivered fit must not
//! be fitted into a second result.

use async_trait::async_trait;
use protocol::{FitJob, FitReply, ForecastJob, ForecastReply, JobError};
use std::sync::Arc;
use std::time::Duration;
use store::{ModelStore, StoreError, VersionStatus};
use transport::JobHandler;

/// Wraps the worker for at-least-once delivery: a fit whose version is
/// already settled (a redelivery, or a version failed meanwhile) is answered
/// from the store instead of being fitted again, so it can neither create a
/// second result nor contradict the store.
pub struct Redeliverable<H> {
    inner: H,
    store: Arc<dyn ModelStore>,
}

/// How long a worker keeps retrying while the store is unreachable, holding
/// the job unacknowledged.
const STORE_RETRY_FOR: Duration = Duration::from_secs(120);

impl<H> Redeliverable<H> {
    pub fn new(inner: H, store: Arc<dyn ModelStore>) -> Self {
        Self { inner, store }
    }

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
        self.inner.forecast(job).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Method, SeriesData};
    use protocol::{FitSummary, ModelName, NamedSeries};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use store::SqliteStore;

    /// Counts the fits that reach it and records them in its store.
    struct Counting {
        fits: AtomicUsize,
        store: Arc<dyn ModelStore>,
    }

    impl Counting {
        fn new(store: &Arc<dyn ModelStore>) -> Self {
            Self {
                fits: AtomicUsize::new(0),
                store: store.clone(),
            }
        }
    }

    #[async_trait]
    impl JobHandler for Counting {
        async fn fit(&self, job: FitJob) -> FitReply {
            self.fits.fetch_add(1, Ordering::SeqCst);
            let summary = FitSummary {
                model: job.model.clone(),
                version: job.version,
                method: job.spec.method,
                series: vec![],
            };
            self.store
                .complete(&job.model, job.version, b"state", &summary)
                .await
                .map_err(|e| JobError::Failed(e.to_string()))?;
            Ok(summary)
        }
        async fn forecast(&self, _job: ForecastJob) -> ForecastReply {
            Err(JobError::Failed("no forecasts here".into()))
        }
    }

    fn job(model: &ModelName, version: i64) -> FitJob {
        FitJob {
            model: model.clone(),
            version,
            spec: engine::ModelSpec::new(Method::Naive, None),
            series: vec![NamedSeries {
                id: "a".into(),
                values: SeriesData::parse(vec![1.0, 2.0, 3.0]).expect("series"),
                calendar: None,
            }],
        }
    }

    /// A store holding version 1 of model "m", pending.
    async fn pending_version() -> (tempfile::TempDir, Arc<dyn ModelStore>, ModelName, i64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ModelStore> =
            Arc::new(SqliteStore::open(dir.path()).await.expect("store"));
        let m = ModelName::parse("m").expect("name");
        let v = store
            .register_pending(&m, 1, None)
            .await
            .expect("register")
            .version();
        (dir, store, m, v)
    }

    #[tokio::test]
    async fn a_settled_version_is_answered_from_the_store_not_fitted_again() {
        let (_dir, store, m, v) = pending_version().await;
        store.fail(&m, v, "failed before").await.expect("fail");
        let r = Redeliverable::new(Counting::new(&store), store.clone());
        match r.fit(job(&m, v)).await {
            Err(JobError::Failed(reason)) => assert_eq!(reason, "failed before"),
            other => panic!("expected the stored failure, got {other:?}"),
        }
        assert_eq!(r.inner.fits.load(Ordering::SeqCst), 0, "fitted again");
    }

    #[tokio::test]
    async fn a_pending_version_is_fitted_once() {
        let (_dir, store, m, v) = pending_version().await;
        let r = Redeliverable::new(Counting::new(&store), store.clone());
        let summary = r.fit(job(&m, v)).await.expect("fitted");
        assert_eq!(summary.version, v);
        assert_eq!(r.inner.fits.load(Ordering::SeqCst), 1);
        // Delivered again: answered from the store.
        assert_eq!(r.fit(job(&m, v)).await.expect("answered"), summary);
        assert_eq!(r.inner.fits.load(Ordering::SeqCst), 1, "fitted twice");
    }
}
