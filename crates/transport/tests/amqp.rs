//! The RabbitMQ transport against the real broker on 127.0.0.1:5672, with a
//! stand-in job handler: round trips, and dead-lettering of a job whose
//! workers keep dying. Each test uses its own namespace and deletes its
//! queues and exchanges at the end.
//!
//! Without a broker the tests print "SKIPPED" to stderr and pass, unless CI
//! or HORIZON_REQUIRE_SERVICES=1 is set, in which case they fail.

use async_trait::async_trait;
use engine::{Forecast, Horizon, Method, SeriesData};
use protocol::{
    FitJob, FitReply, FitSummary, ForecastJob, ForecastReply, ForecastResult, ModelName,
    NamedSeries, SeriesFit, SeriesForecast,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store::{ModelStore, SqliteStore, VersionStatus};
use transport::amqp::{run_worker, AmqpConfig, AmqpTransport};
use transport::{JobHandler, Transport, TransportError};

const BROKER: &str = test_services::BROKER_URL;

/// Whether the broker answers; fails or loudly skips when it does not.
fn broker_or_skip(test: &str) -> bool {
    test_services::available_or_skip(test, &[test_services::RABBITMQ])
}

fn namespace(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t_{tag}_{}_{nanos}", std::process::id())
}

/// Deletes a namespace's queues and exchanges.
async fn cleanup(ns: &str) {
    let _ = transport::amqp::delete_topology(BROKER, ns).await;
}

fn name(s: &str) -> ModelName {
    ModelName::parse(s).expect("model name")
}

/// Answers fits from the job, forecasts with the version repeated; a fit or
/// forecast of the model "poison" never finishes (its worker is then killed).
struct Echo {
    store: Arc<dyn ModelStore>,
    poison_seen: Arc<tokio::sync::Notify>,
    /// A forecast of the model "slow" waits for this.
    release_slow: Arc<tokio::sync::Notify>,
    jobs: AtomicUsize,
}

#[async_trait]
impl JobHandler for Echo {
    async fn fit(&self, job: FitJob) -> FitReply {
        self.jobs.fetch_add(1, Ordering::SeqCst);
        if job.model.as_str() == "poison" {
            self.poison_seen.notify_one();
            std::future::pending::<()>().await;
        }
        let summary = FitSummary {
            model: job.model.clone(),
            version: job.version,
            method: job.spec.method,
            series: job
                .series
                .iter()
                .map(|s| SeriesFit {
                    id: s.id.clone(),
                    chosen: "Echo".into(),
                    fallback: None,
                    n_obs: s.values.len(),
                    n_missing: 0,
                    calendar: None,
                })
                .collect(),
        };
        self.store
            .complete(&job.model, job.version, b"state", &summary)
            .await
            .map_err(|e| protocol::JobError::Failed(e.to_string()))?;
        Ok(summary)
    }

    async fn forecast(&self, job: ForecastJob) -> ForecastReply {
        self.jobs.fetch_add(1, Ordering::SeqCst);
        if job.model.as_str() == "poison" {
            self.poison_seen.notify_one();
            std::future::pending::<()>().await;
        }
        if job.model.as_str() == "slow" {
            self.release_slow.notified().await;
        }
        let n = job.horizon.get();
        Ok(ForecastResult {
            model: job.model,
            version: job.version,
            series: vec![SeriesForecast {
                id: "a".into(),
                forecast: Forecast {
                    mean: vec![job.version as f64; n],
                    intervals: vec![],
                },
            }],
        })
    }
}

impl Echo {
    fn new(store: &Arc<dyn ModelStore>) -> Arc<Self> {
        Arc::new(Self {
            store: store.clone(),
            poison_seen: Arc::new(tokio::sync::Notify::new()),
            release_slow: Arc::new(tokio::sync::Notify::new()),
            jobs: AtomicUsize::new(0),
        })
    }
}

/// A namespace of its own, a SQLite store and a connected gateway.
struct Setup {
    ns: String,
    _dir: tempfile::TempDir,
    store: Arc<dyn ModelStore>,
    cfg: AmqpConfig,
    gw: Arc<AmqpTransport>,
}

async fn setup(tag: &str) -> Setup {
    let ns = namespace(tag);
    let (dir, store) = sqlite().await;
    let cfg = AmqpConfig::new(BROKER, &ns);
    let gw = Arc::new(AmqpTransport::start(cfg.clone(), Some(store.clone())));
    gw.wait_connected(Duration::from_secs(10))
        .await
        .expect("gateway connects");
    Setup {
        ns,
        _dir: dir,
        store,
        cfg,
        gw,
    }
}

/// A worker with the `Echo` handler, stopped by sending on the channel.
fn start_worker(
    cfg: &AmqpConfig,
    store: &Arc<dyn ModelStore>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    start_echo_worker(cfg, Echo::new(store))
}

fn start_echo_worker(
    cfg: &AmqpConfig,
    echo: Arc<Echo>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run_worker(cfg.clone(), echo, None, async {
        let _ = stop_rx.await;
    }));
    (stop_tx, worker)
}

fn forecast_job(model: &str) -> ForecastJob {
    ForecastJob {
        model: name(model),
        version: 1,
        horizon: Horizon::parse(2).expect("horizon"),
        levels: vec![],
        series_ids: None,
    }
}

fn fit_job(model: &ModelName, version: i64) -> FitJob {
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

async fn sqlite() -> (tempfile::TempDir, Arc<dyn ModelStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).await.expect("store");
    (dir, Arc::new(store))
}

#[tokio::test]
async fn fit_and_forecast_round_trip() {
    if !broker_or_skip("fit_and_forecast_round_trip") {
        return;
    }
    let Setup {
        ns,
        _dir,
        store,
        cfg,
        gw,
    } = setup("rt").await;
    let (stop_tx, worker) = start_worker(&cfg, &store);
    gw.ready().await.expect("ready");

    let m = name("m");
    let v = store
        .register_pending(&m, 1, None)
        .await
        .expect("register")
        .version();
    let summary = gw
        .fit(fit_job(&m, v))
        .await
        .expect("delivered")
        .expect("fit ok");
    assert_eq!(summary.version, v);
    assert_eq!(summary.series[0].n_obs, 3);

    let mut answers = Vec::new();
    for _ in 0..50 {
        let job = ForecastJob {
            model: m.clone(),
            version: v,
            horizon: Horizon::parse(4).expect("horizon"),
            levels: vec![],
            series_ids: None,
        };
        answers.push(gw.forecast(job));
    }
    for a in futures_util::future::join_all(answers).await {
        let r = a.expect("delivered").expect("forecast ok");
        assert_eq!(r.series[0].forecast.mean, vec![v as f64; 4]);
    }
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("worker stops")
        .expect("worker task");
    drop(gw);
    cleanup(&ns).await;
}

#[tokio::test]
async fn a_job_that_kills_its_workers_is_dead_lettered_and_answered() {
    if !broker_or_skip("a_job_that_kills_its_workers_is_dead_lettered_and_answered") {
        return;
    }
    let Setup {
        ns,
        _dir,
        store,
        cfg,
        gw,
    } = setup("dl").await;
    let m = name("poison");
    let v = store
        .register_pending(&m, 1, None)
        .await
        .expect("register")
        .version();
    let asking = {
        let gw = gw.clone();
        let job = fit_job(&m, v);
        tokio::spawn(async move { gw.fit(job).await })
    };
    // Each "worker" runs in its own runtime that dies, like a killed
    // process, as soon as it holds the poison job.
    let killed = kill_workers_on_poison(&cfg, &store).await;
    assert_eq!(
        killed.len(),
        3,
        "the poison job is delivered exactly 3 times"
    );
    let answer = tokio::time::timeout(Duration::from_secs(10), asking)
        .await
        .expect("the client is answered")
        .expect("task");
    match answer {
        Err(TransportError::DeadLettered(reason)) => assert!(reason.contains("dead-lettered")),
        other => panic!("expected a dead-letter error, got {other:?}"),
    }
    let info = store
        .wait_settled(&m, v, Duration::from_secs(5))
        .await
        .expect("settled");
    assert!(
        matches!(info.status, VersionStatus::Failed { ref reason } if reason.contains("dead-lettered")),
        "{info:?}"
    );
    drop(gw);
    cleanup(&ns).await;
}

/// Runs workers one after the other, each in a runtime that dies like a
/// killed process as soon as it holds a poison job; returns, for each
/// worker that did, how many jobs it had started.
async fn kill_workers_on_poison(cfg: &AmqpConfig, store: &Arc<dyn ModelStore>) -> Vec<usize> {
    let mut killed = Vec::new();
    for _ in 0..6 {
        let handler = Echo::new(store);
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.spawn(run_worker(
            cfg.clone(),
            handler.clone(),
            None,
            std::future::pending(),
        ));
        let seen = tokio::time::timeout(Duration::from_secs(5), handler.poison_seen.notified());
        let got = seen.await;
        rt.shutdown_background();
        if got.is_err() {
            break;
        }
        killed.push(handler.jobs.load(Ordering::SeqCst));
    }
    killed
}

#[tokio::test]
async fn a_forecast_that_kills_its_workers_is_dead_lettered_alone() {
    if !broker_or_skip("a_forecast_that_kills_its_workers_is_dead_lettered_alone") {
        return;
    }
    let Setup {
        ns,
        _dir,
        store,
        cfg,
        gw,
    } = setup("fdl").await;
    // Sent together while no worker runs, so they travel in batches, the
    // poison forecast among healthy ones.
    let asking: Vec<_> = (0..21)
        .map(|i| {
            let model = if i == 10 { "poison" } else { "m" };
            let gw = gw.clone();
            tokio::spawn(async move { (model, gw.forecast(forecast_job(model)).await) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = kill_workers_on_poison(&cfg, &store).await;
    // The batch, then the poison alone after the split, then once more.
    assert_eq!(
        killed.len(),
        3,
        "the poison forecast is delivered exactly 3 times"
    );
    assert!(
        killed[0] > 1,
        "the first worker died holding only the poison forecast: nothing was batched with it ({killed:?})"
    );
    // A worker that lives on answers the healthy forecasts still queued.
    let (stop_tx, worker) = start_worker(&cfg, &store);
    for a in asking {
        let (model, answer) = tokio::time::timeout(Duration::from_secs(20), a)
            .await
            .expect("every client is answered")
            .expect("task");
        match (model, answer) {
            ("poison", Err(TransportError::DeadLettered(reason))) => {
                assert!(reason.contains("3 delivery attempts"), "{reason}")
            }
            ("m", Ok(Ok(r))) => assert_eq!(r.series[0].forecast.mean, vec![1.0; 2]),
            (model, other) => panic!("unexpected answer for {model}: {other:?}"),
        }
    }
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    drop(gw);
    cleanup(&ns).await;
}

#[tokio::test]
async fn a_waiting_forecast_holds_back_none_of_its_batch_mates() {
    if !broker_or_skip("a_waiting_forecast_holds_back_none_of_its_batch_mates") {
        return;
    }
    let Setup {
        ns,
        _dir,
        store,
        cfg,
        gw,
    } = setup("slow").await;
    // Sent together while no worker runs, so they travel in batches.
    let slow = {
        let gw = gw.clone();
        tokio::spawn(async move { gw.forecast(forecast_job("slow")).await })
    };
    let quick: Vec<_> = (0..9)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { gw.forecast(forecast_job("m")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let echo = Echo::new(&store);
    let (stop_tx, worker) = start_echo_worker(&cfg, echo.clone());
    // The slow forecast is released only once the others are answered.
    for q in quick {
        let answer = tokio::time::timeout(Duration::from_secs(20), q)
            .await
            .expect("answered while the slow forecast of the batch still waits")
            .expect("task");
        assert_eq!(
            answer.expect("delivered").expect("ok").series[0]
                .forecast
                .mean,
            vec![1.0; 2]
        );
    }
    assert!(!slow.is_finished());
    echo.release_slow.notify_one();
    let answer = tokio::time::timeout(Duration::from_secs(20), slow)
        .await
        .expect("the slow forecast is answered once released")
        .expect("task");
    assert!(answer.expect("delivered").is_ok());
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    drop(gw);
    cleanup(&ns).await;
}
