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
    /// A fit of the model "held" tells this, then takes 5 seconds.
    held_started: Arc<tokio::sync::Notify>,
    /// Forecasts of the model "huge" answered with `huge_points` points
    /// before the usual answer.
    huge_answers: AtomicUsize,
    huge_points: AtomicUsize,
}

/// Points of a "huge" forecast: about 143 MB of JSON, over RabbitMQ's
/// default 128 MiB `max_message_size`.
const HUGE_ANSWER_POINTS: usize = 7_500_000;
/// Added to every forecast point: 17 digits each in JSON.
const SEVENTH: f64 = 1.0 / 7.0;

#[async_trait]
impl JobHandler for Echo {
    async fn fit(&self, job: FitJob) -> FitReply {
        self.jobs.fetch_add(1, Ordering::SeqCst);
        if job.model.as_str() == "poison" {
            self.poison_seen.notify_one();
            std::future::pending::<()>().await;
        }
        if job.model.as_str() == "held" {
            self.held_started.notify_one();
            tokio::time::sleep(Duration::from_secs(5)).await;
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
                    index: None,
                })
                .collect(),
            base: None,
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
        let mut n = job.horizon.get();
        if job.model.as_str() == "huge"
            && self
                .huge_answers
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            n = self.huge_points.load(Ordering::SeqCst);
        }
        Ok(ForecastResult {
            model: job.model,
            version: job.version,
            series: vec![SeriesForecast {
                id: "a".into(),
                forecast: Forecast {
                    // Many digits, so that huge answers are huge.
                    mean: vec![job.version as f64 + SEVENTH; n],
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
            held_started: Arc::new(tokio::sync::Notify::new()),
            huge_answers: AtomicUsize::new(0),
            huge_points: AtomicUsize::new(HUGE_ANSWER_POINTS),
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
        shard: None,
    }
}

fn fit_job(model: &ModelName, version: i64) -> FitJob {
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
            shard: None,
        };
        answers.push(gw.forecast(job));
    }
    for a in futures_util::future::join_all(answers).await {
        let r = a.expect("delivered").expect("forecast ok");
        assert_eq!(r.series[0].forecast.mean, vec![v as f64 + SEVENTH; 4]);
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
            ("m", Ok(Ok(r))) => {
                assert_eq!(r.series[0].forecast.mean, vec![1.0 + SEVENTH; 2])
            }
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
            vec![1.0 + SEVENTH; 2]
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

/// A fit job of `points` values of 1e15, each 19 bytes in the message
/// (`1000000000000000.0,`).
fn big_fit_job(model: &ModelName, version: i64, points: usize) -> FitJob {
    let per_series = 100_000;
    let mut job = fit_job(model, version);
    job.series = (0..points.div_ceil(per_series))
        .map(|i| NamedSeries {
            id: i.to_string(),
            values: SeriesData::parse(vec![1e15; per_series.min(points - i * per_series)])
                .expect("series"),
            calendar: None,
            index: None,
        })
        .collect();
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_closed_by_the_broker_fails_only_its_own_requests() {
    if !broker_or_skip("a_channel_closed_by_the_broker_fails_only_its_own_requests") {
        return;
    }
    let ns = namespace("chan");
    let (_dir, store) = sqlite().await;
    // A gateway that believes the broker takes any message: the broker
    // closes its fit channel when the fit goes over 128 MiB.
    let mut cfg = AmqpConfig::new(BROKER, &ns);
    cfg.max_message_bytes = usize::MAX;
    cfg.fit_timeout = Duration::from_secs(5);
    // Encoding and sending 137 MB takes a while in a debug build.
    cfg.forecast_timeout = Duration::from_secs(180);
    let gw = Arc::new(AmqpTransport::start(cfg.clone(), Some(store.clone())));
    gw.wait_connected(Duration::from_secs(10))
        .await
        .expect("gateway connects");
    let echo = Echo::new(&store);
    let (stop_tx, worker) = start_echo_worker(&cfg, echo.clone());

    // Forecasts in flight, held by the worker, while the fit channel dies.
    let asking: Vec<_> = (0..20)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { gw.forecast(forecast_job("slow")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = name("big");
    let v = store
        .register_pending(&m, 1, None)
        .await
        .expect("register")
        .version();
    let big = gw.fit(big_fit_job(&m, v, 7_200_000)).await;
    assert!(
        !matches!(big, Ok(Ok(_))),
        "the broker took a fit over its limit: {big:?}"
    );
    while asking.iter().any(|a| !a.is_finished()) {
        echo.release_slow.notify_waiters();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut failed = 0;
    for a in asking {
        if !matches!(a.await.expect("task"), Ok(Ok(_))) {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "forecasts failed by the fit channel's error");
    // The fit channel is open again.
    let v = store
        .register_pending(&m, 1, None)
        .await
        .expect("register")
        .version();
    let again = gw.fit(fit_job(&m, v)).await.expect("delivered");
    assert!(again.is_ok(), "{again:?}");
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    drop(gw);
    cleanup(&ns).await;
}

#[tokio::test]
async fn a_fit_larger_than_the_broker_accepts_is_refused_before_sending() {
    if !broker_or_skip("a_fit_larger_than_the_broker_accepts_is_refused_before_sending") {
        return;
    }
    let ns = namespace("big");
    let (_dir, store) = sqlite().await;
    let mut cfg = AmqpConfig::new(BROKER, &ns);
    cfg.max_message_bytes = 1 << 20;
    let gw = AmqpTransport::start(cfg.clone(), Some(store.clone()));
    gw.wait_connected(Duration::from_secs(10))
        .await
        .expect("gateway connects");
    let m = name("big");
    // 1,000,000 bytes at most by the bound: accepted without measuring.
    assert!(gw.check_fit(&big_fit_job(&m, 0, 30_000)).is_ok());
    // 1,140,000 bytes or so: measured, refused.
    let job = big_fit_job(&m, 0, 60_000);
    match gw.check_fit(&job) {
        Err(TransportError::TooLarge { bytes, limit }) => {
            assert_eq!(limit, 1 << 20);
            let encoded = serde_json::to_vec(&job).expect("encode").len();
            assert!(
                bytes >= encoded && bytes <= encoded + 20,
                "{bytes} vs {encoded}"
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // And never published, should a caller skip the check.
    assert!(matches!(
        gw.fit(job).await,
        Err(TransportError::TooLarge { .. })
    ));
    drop(gw);
    cleanup(&ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_channel_the_broker_closes_gives_back_its_jobs() {
    if !broker_or_skip("a_worker_whose_channel_the_broker_closes_gives_back_its_jobs") {
        return;
    }
    let ns = namespace("wchan");
    let (_dir, store) = sqlite().await;
    let mut cfg = AmqpConfig::new(BROKER, &ns);
    // Encoding and sending 137 MB takes a while in a debug build.
    cfg.forecast_timeout = Duration::from_secs(180);
    let gw = Arc::new(AmqpTransport::start(cfg.clone(), Some(store.clone())));
    gw.wait_connected(Duration::from_secs(10))
        .await
        .expect("gateway connects");
    // A worker that believes the broker takes any message: its forecast
    // channel is closed by the broker when it publishes a huge answer.
    let mut worker_cfg = cfg.clone();
    worker_cfg.max_message_bytes = usize::MAX;
    let echo = Echo::new(&store);
    echo.huge_answers.store(1, Ordering::SeqCst);
    let (stop_tx, worker) = start_echo_worker(&worker_cfg, echo.clone());
    gw.ready().await.expect("ready");

    let m = name("held");
    let v = store
        .register_pending(&m, 1, None)
        .await
        .expect("register")
        .version();
    let fit = {
        let gw = gw.clone();
        let job = fit_job(&m, v);
        tokio::spawn(async move { gw.fit(job).await })
    };
    // While the fit is in hand.
    echo.held_started.notified().await;
    let huge = gw.forecast(forecast_job("huge")).await;
    let fit = tokio::time::timeout(Duration::from_secs(120), fit)
        .await
        .expect("the fit in hand is redelivered and answered")
        .expect("task");
    assert!(matches!(fit, Ok(Ok(_))), "{fit:?}");
    // Redelivered too, and answered as usual the second time.
    assert!(matches!(huge, Ok(Ok(_))), "{huge:?}");
    // One consumer per queue: nothing of the dead session lives on.
    let topo = transport::amqp::Topology::new(&ns);
    for queue in [&topo.fit_queue, &topo.forecast_queue, &topo.retry_queue] {
        let consumers = transport::amqp::queue_consumers(BROKER, queue)
            .await
            .expect("queue");
        assert_eq!(consumers, 1, "consumers of {queue}");
    }
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    drop(gw);
    cleanup(&ns).await;
}

#[tokio::test]
async fn an_answer_larger_than_the_broker_accepts_is_an_error_answer() {
    if !broker_or_skip("an_answer_larger_than_the_broker_accepts_is_an_error_answer") {
        return;
    }
    let Setup {
        ns,
        _dir,
        store,
        cfg,
        gw,
    } = setup("bigans").await;
    let mut worker_cfg = cfg.clone();
    worker_cfg.max_message_bytes = 1 << 20;
    let echo = Echo::new(&store);
    echo.huge_answers.store(1, Ordering::SeqCst);
    // About 2.4 MB of answer.
    echo.huge_points.store(100_000, Ordering::SeqCst);
    let (stop_tx, worker) = start_echo_worker(&worker_cfg, echo.clone());
    gw.ready().await.expect("ready");
    // Together, so that they may share a batch: the others are answered.
    let asking: Vec<_> = ["huge", "m", "m", "m"]
        .into_iter()
        .map(|model| {
            let gw = gw.clone();
            tokio::spawn(async move { (model, gw.forecast(forecast_job(model)).await) })
        })
        .collect();
    for a in asking {
        match a.await.expect("task") {
            ("huge", Ok(Err(protocol::JobError::Failed(why)))) => {
                assert!(why.contains(&(1 << 20).to_string()), "{why}")
            }
            ("m", Ok(Ok(_))) => {}
            (model, other) => panic!("unexpected answer for {model}: {other:?}"),
        }
    }
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    drop(gw);
    cleanup(&ns).await;
}
