//! At-least-once delivery on the worker's side: a redelivered fit must not
//! be fitted into a second result.
//!
//! While it fits, a worker keeps the version's heartbeat fresh in the store
//! (its claim at the start, then every [`HEARTBEAT`]), so the pending-TTL
//! sweep can tell a long fit on a live worker from an abandoned one.

use crate::retry::{while_unavailable, STORE_RETRY_FOR};
use async_trait::async_trait;
use protocol::{FitJob, FitReply, ForecastJob, ForecastReply, JobError, ModelName, Version};
use std::sync::Arc;
use std::time::Duration;
use store::{ModelStore, StoreError, VersionStatus};
use transport::JobHandler;

/// How often a worker fitting a version says so in the store. The gateway's
/// `--pending-ttl` must be several times longer.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Wraps the worker for at-least-once delivery: a fit whose version is
/// already settled (a redelivery, or a version failed meanwhile) is answered
/// from the store instead of being fitted again, so it can neither create a
/// second result nor contradict the store.
pub struct Redeliverable<H> {
    inner: H,
    store: Arc<dyn ModelStore>,
    heartbeat: Duration,
    store_retry: Duration,
}

/// The heartbeat of one fit; stops when dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(
        store: Arc<dyn ModelStore>,
        model: ModelName,
        version: Version,
        every: Duration,
    ) -> Self {
        Self(tokio::spawn(async move {
            loop {
                // A missed beat is harmless: the next one is `every` away,
                // and the TTL spans several.
                if let Err(e) = store.heartbeat(&model, version).await {
                    tracing::debug!(%model, version, "heartbeat not recorded: {e}");
                }
                tokio::time::sleep(every).await;
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<H> Redeliverable<H> {
    pub fn new(inner: H, store: Arc<dyn ModelStore>) -> Self {
        Self {
            inner,
            store,
            heartbeat: HEARTBEAT,
            store_retry: STORE_RETRY_FOR,
        }
    }

    /// Beats every `every` instead of [`HEARTBEAT`].
    pub fn heartbeat_every(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// The version's status, waiting out an unavailable store. A shard of a
    /// ready version is answered with its own series' summary, never the
    /// version's (which the store assembles from every shard: a million
    /// entries for a million series).
    async fn status(&self, job: &FitJob) -> Result<Option<FitReply>, JobError> {
        let read = while_unavailable("reading a fit's version", self.store_retry, || async {
            let Some(shard) = job.shard else {
                return self
                    .store
                    .wait_settled(&job.model, job.version, Duration::ZERO)
                    .await;
            };
            let mut info = self
                .store
                .wait_status(&job.model, job.version, Duration::ZERO)
                .await?;
            if info.status == VersionStatus::Ready {
                info.summary = Some(
                    self.store
                        .shard_summary(&job.model, job.version, shard.index)
                        .await?,
                );
            }
            Ok(info)
        })
        .await;
        match read {
            Ok(info) => Ok(match info.status {
                VersionStatus::Ready => Some(info.summary.ok_or_else(|| {
                    JobError::Failed(format!(
                        "version {} of '{}' is ready but has no summary",
                        job.version, job.model
                    ))
                })),
                VersionStatus::Failed { reason } => Some(Err(JobError::Failed(reason))),
                VersionStatus::Pending => None,
            }),
            Err(StoreError::WaitTimeout(_)) => Ok(None),
            Err(e @ StoreError::Unavailable(_)) => Err(JobError::Unavailable(format!(
                "reading version {} of '{}': {e}",
                job.version, job.model
            ))),
            Err(e) => Err(JobError::Failed(format!(
                "reading version {} of '{}': {e}",
                job.version, job.model
            ))),
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
            let _alive = Heartbeat::start(
                self.store.clone(),
                job.model.clone(),
                job.version,
                self.heartbeat,
            );
            let reply = self.inner.fit(job.clone()).await;
            // A shard stored leaves its version pending until the last
            // shard: its own answer is the outcome.
            if job.shard.is_some() && reply.is_ok() {
                return reply;
            }
            if let Err(JobError::Unavailable(_)) = reply {
                // The store was down for the whole retry period: fitting
                // again would not help.
                return reply;
            }
            last = Some(reply);
        }
        if let Some(answer) = self.status(&job).await? {
            return answer;
        }
        last.unwrap_or_else(|| Err(JobError::Failed("the fit was not recorded".to_string())))
    }

    async fn forecast(&self, job: ForecastJob) -> ForecastReply {
        self.inner.forecast(job).await
    }

    async fn backtest(&self, job: protocol::BacktestJob) -> protocol::BacktestReply {
        self.inner.backtest(job).await
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
                base: None,
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
            shard: None,
            base: None,
            model: model.clone(),
            version,
            spec: engine::ModelSpec::new(Method::Naive, None),
            series: vec![NamedSeries {
                id: "a".into(),
                values: SeriesData::parse(vec![1.0, 2.0, 3.0]).expect("series"),
                calendar: None,
                index: None,
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

    /// A shard delivered again once its version is ready is answered with
    /// its own series, not the whole version's (every shard's).
    #[tokio::test]
    async fn a_shard_of_a_ready_version_is_answered_with_its_own_series() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ModelStore> =
            Arc::new(SqliteStore::open(dir.path()).await.expect("store"));
        let m = ModelName::parse("m").expect("name");
        let v = store
            .register_pending(&m, 3, None)
            .await
            .expect("register")
            .version();
        let part = |ids: &[&str]| FitSummary {
            model: m.clone(),
            version: v,
            method: Method::Naive,
            series: ids
                .iter()
                .map(|id| protocol::SeriesFit {
                    id: id.to_string(),
                    chosen: "Naive".into(),
                    fallback: None,
                    n_obs: 3,
                    n_missing: 0,
                    calendar: None,
                    index: None,
                })
                .collect(),
            base: None,
        };
        for (index, ids) in [(0, &["a", "b"][..]), (1, &["c"])] {
            let shard = protocol::shard::Shard { index, count: 2 };
            store
                .complete_shard(&m, v, shard, b"state", &part(ids))
                .await
                .expect("shard");
        }
        let r = Redeliverable::new(Counting::new(&store), store.clone());
        let mut again = job(&m, v);
        again.shard = Some(protocol::shard::Shard { index: 1, count: 2 });
        assert_eq!(r.fit(again).await.expect("answered"), part(&["c"]));
        assert_eq!(r.inner.fits.load(Ordering::SeqCst), 0, "fitted again");
    }
}
