//! The pending-TTL sweep fails abandoned versions, never a fit that is still
//! running on a live worker, however long it takes (issue 13, defect 4).
//! Against the shared PostgreSQL, in a schema of its own.

use async_trait::async_trait;
use engine::{Method, ModelSpec, SeriesData};
use protocol::{
    FitJob, FitReply, FitSummary, ForecastJob, ForecastReply, JobError, ModelName, NamedSeries,
};
use std::sync::Arc;
use std::time::Duration;
use store::postgres::{PgConfig, PgStore};
use store::{ModelStore, VersionStatus};
use transport::JobHandler;
use worker::Redeliverable;

/// A fit that takes `takes`, then records its result.
struct Slow {
    takes: Duration,
    store: Arc<dyn ModelStore>,
}

#[async_trait]
impl JobHandler for Slow {
    async fn fit(&self, job: FitJob) -> FitReply {
        tokio::time::sleep(self.takes).await;
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

#[tokio::test]
async fn a_long_fit_on_a_live_worker_outlives_the_pending_ttl() {
    let test = "a_long_fit_on_a_live_worker_outlives_the_pending_ttl";
    if !test_services::available_or_skip(test, &[test_services::POSTGRES]) {
        return;
    }
    let schema = format!("t_heartbeat_{}", std::process::id());
    let url = test_services::STORE_URL;
    let pg = Arc::new(
        PgStore::connect(&PgConfig::new(url, &schema))
            .await
            .expect("store"),
    );
    let store: Arc<dyn ModelStore> = pg.clone();
    let (running, abandoned) = (
        ModelName::parse("running").expect("name"),
        ModelName::parse("abandoned").expect("name"),
    );
    let v = store
        .register_pending(&running, 1, None)
        .await
        .expect("register")
        .version();
    let lost = store
        .register_pending(&abandoned, 1, None)
        .await
        .expect("register")
        .version();

    // The gateway's sweep with a TTL of 1 s, every 100 ms.
    let ttl = Duration::from_secs(1);
    let sweeper = {
        let pg = pg.clone();
        tokio::spawn(async move {
            loop {
                pg.fail_stale_pending(ttl).await.expect("sweep");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // A fit three times longer than the TTL on a worker beating every 200 ms.
    let worker = Redeliverable::new(
        Slow {
            takes: 3 * ttl,
            store: store.clone(),
        },
        store.clone(),
    )
    .heartbeat_every(Duration::from_millis(200));
    let job = FitJob {
        shard: None,
        base: None,
        model: running.clone(),
        version: v,
        spec: ModelSpec::new(Method::Naive, None),
        series: vec![NamedSeries {
            id: "a".into(),
            values: SeriesData::parse(vec![1.0, 2.0, 3.0]).expect("series"),
            calendar: None,
            index: None,
        }],
    };
    let fitting = tokio::spawn(async move { worker.fit(job).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !store
            .is_orphaned(&running, v, ttl)
            .await
            .expect("orphaned?"),
        "a fit with a live worker is not orphaned"
    );
    let reply = fitting.await.expect("fit task");
    sweeper.abort();

    assert!(reply.is_ok(), "the fit was answered {reply:?}");
    let info = store
        .wait_settled(&running, v, Duration::from_secs(1))
        .await
        .expect("settled");
    assert_eq!(
        info.status,
        VersionStatus::Ready,
        "the running fit was swept"
    );
    let info = store
        .wait_settled(&abandoned, lost, Duration::from_secs(1))
        .await
        .expect("settled");
    match info.status {
        VersionStatus::Failed { reason } => assert!(reason.contains("abandoned"), "{reason}"),
        other => panic!("the abandoned version is {other:?}"),
    }
    assert!(!store
        .is_orphaned(&abandoned, lost, ttl)
        .await
        .expect("orphaned?"));
    pg.close().await;
    PgStore::drop_schema(url, &schema)
        .await
        .expect("drop schema");
}
