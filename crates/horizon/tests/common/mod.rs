//! Test harness: the real app (gateway + embedded store + in-process
//! transport + worker) on 127.0.0.1:0 with its store in a directory, driven
//! over real HTTP, plus a job handler wrapper that holds or fails fits on
//! command so tests can stage races without sleeping.

#![allow(dead_code)]

use async_trait::async_trait;
use gateway::{AppState, GatewayConfig, Shutdown};
use protocol::{FitJob, FitReply, ForecastJob, ForecastReply, JobError, Version};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{ModelStore, SqliteStore};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use transport::{InProcessTransport, JobHandler};

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub control: Arc<Control>,
    pub store: Arc<dyn ModelStore>,
    shutdown: Shutdown,
    task: JoinHandle<std::io::Result<()>>,
}

/// Options of [`TestServer::start_with`].
pub struct Options {
    pub config: GatewayConfig,
    pub fit_slots: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: GatewayConfig {
                wait_timeout: Duration::from_secs(30),
                fit_timeout: Duration::from_secs(30),
                forecast_timeout: Duration::from_secs(30),
                body_limit: gateway::DEFAULT_BODY_LIMIT,
                // The tests count every version they made: no pruning.
                keep_versions: 1_000_000,
                ..GatewayConfig::default()
            },
            fit_slots: 2,
        }
    }
}

impl Options {
    /// The defaults, with fits split into shards of `series` series.
    pub fn sharded(series: usize) -> Self {
        let mut options = Self::default();
        options.config.shard_sizes = protocol::shard::ShardSizes {
            series,
            points: 1_000_000,
        };
        options
    }
}

impl TestServer {
    pub async fn start(dir: &Path) -> Self {
        Self::start_with(dir, Options::default()).await
    }

    pub async fn start_with(dir: &Path, options: Options) -> Self {
        let store: Arc<dyn ModelStore> =
            Arc::new(SqliteStore::open(dir).await.expect("store opens"));
        Self::start_on(store, options).await
    }

    /// The app on a store of the test's making (e.g. one that records calls).
    pub async fn start_on(store: Arc<dyn ModelStore>, options: Options) -> Self {
        let worker: Arc<dyn JobHandler> = Arc::new(worker::Worker::new(store.clone()));
        let control = Arc::new(Control::new(worker));
        let transport = Arc::new(InProcessTransport::new(
            control.clone(),
            options.fit_slots,
            8,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = Shutdown::new();
        let state = AppState::new(store.clone(), transport, options.config);
        let task = tokio::spawn(gateway::serve(listener, state, shutdown.clone()));
        Self {
            base,
            client: reqwest::Client::new(),
            control,
            store,
            shutdown,
            task,
        }
    }

    /// Starts a graceful shutdown and returns the server's task.
    pub fn begin_stop(self) -> (JoinHandle<std::io::Result<()>>, Arc<dyn ModelStore>) {
        self.shutdown.trigger();
        (self.task, self.store)
    }

    pub async fn stop(self) {
        let (task, store) = self.begin_stop();
        task.await.expect("server task").expect("server ran");
        store.close().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        answer(self.client.post(self.url(path)).json(&body).send().await).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        answer(self.client.put(self.url(path)).json(&body).send().await).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        answer(self.client.get(self.url(path)).send().await).await
    }

    /// A request with a raw body and an optional content type.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path)).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        answer(request.send().await).await
    }

    /// The newest registered version of a model (any status), via the API.
    pub async fn latest_version(&self, model: &str) -> Option<Version> {
        let (status, body) = self.get(&format!("/v1/models/{model}")).await;
        if status == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["latest_version"].as_i64()
    }

    /// Status of one version via the API ("pending", "ready", "failed").
    pub async fn version_status(&self, model: &str, version: Version) -> Option<String> {
        // The page that starts at `version` (listings are paged).
        let (_, body) = self
            .get(&format!("/v1/models/{model}?limit=1&after={}", version - 1))
            .await;
        body["data"]["versions"]
            .as_array()?
            .iter()
            .find(|v| v["version"].as_i64() == Some(version))
            .and_then(|v| v["status"].as_str().map(str::to_string))
    }

    /// Waits (bounded) until `version` of `model` is registered.
    pub async fn until_registered(&self, model: &str, version: Version) {
        for _ in 0..1000 {
            if self
                .latest_version(model)
                .await
                .is_some_and(|v| v >= version)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("version {version} of {model} was never registered");
    }
}

/// Parses an answer, insisting that it is JSend JSON whatever the status.
pub async fn answer(sent: reqwest::Result<reqwest::Response>) -> (StatusCode, Value) {
    let response = sent.expect("request sent");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("body read");
    assert!(
        content_type.starts_with("application/json"),
        "{status}: content type '{content_type}', body {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"));
    let kind = body["status"].as_str().unwrap_or("");
    let expected = if status.is_success() {
        "success"
    } else if status.is_client_error() {
        "fail"
    } else {
        "error"
    };
    assert_eq!(kind, expected, "{status}: {body}");
    if kind == "error" {
        assert!(
            body["message"].is_string(),
            "JSend error without message: {body}"
        );
    }
    (status, body)
}

/// Wraps the real worker; fits of "held" models wait for [`Control::release`],
/// fits of "doomed" models then fail without touching the store (as a worker
/// that crashed mid-fit would); forecasts of models held with
/// [`Control::hold_forecasts`] wait for [`Control::release_forecast`].
pub struct Control {
    inner: Arc<dyn JobHandler>,
    held: Mutex<HashSet<String>>,
    forecasts_held: Mutex<HashSet<String>>,
    forecasts_waiting: Mutex<HashMap<String, usize>>,
    doomed: Mutex<HashSet<String>>,
    gates: Mutex<HashMap<(String, Version), Arc<Semaphore>>>,
    specs: Mutex<HashMap<String, engine::ModelSpec>>,
}

impl Control {
    fn new(inner: Arc<dyn JobHandler>) -> Self {
        Self {
            inner,
            held: Mutex::default(),
            forecasts_held: Mutex::default(),
            forecasts_waiting: Mutex::default(),
            doomed: Mutex::default(),
            gates: Mutex::default(),
            specs: Mutex::default(),
        }
    }

    /// The model spec of the last fit of `model` that reached the worker.
    pub fn last_spec(&self, model: &str) -> Option<engine::ModelSpec> {
        self.specs.lock().unwrap().get(model).cloned()
    }

    pub fn hold(&self, model: &str) {
        self.held.lock().unwrap().insert(model.to_string());
    }

    pub fn doom(&self, model: &str) {
        self.doomed.lock().unwrap().insert(model.to_string());
    }

    /// Lets the held fit of `version` of `model` go on (before or after it arrives).
    pub fn release(&self, model: &str, version: Version) {
        self.gate(model, version).add_permits(1);
    }

    /// Forecasts of `model` that reach the worker from now on wait there
    /// until [`Control::release_forecast`].
    pub fn hold_forecasts(&self, model: &str) {
        self.forecasts_held
            .lock()
            .unwrap()
            .insert(model.to_string());
    }

    /// Lets one held forecast of `model` go on (before or after it arrives).
    pub fn release_forecast(&self, model: &str) {
        self.gate(&format!("{model} forecast"), 0).add_permits(1);
    }

    /// Returns once a forecast of `model` waits at the worker.
    pub async fn until_forecast_held(&self, model: &str) {
        while self
            .forecasts_waiting
            .lock()
            .unwrap()
            .get(model)
            .copied()
            .unwrap_or(0)
            == 0
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn gate(&self, model: &str, version: Version) -> Arc<Semaphore> {
        self.gates
            .lock()
            .unwrap()
            .entry((model.to_string(), version))
            .or_insert_with(|| Arc::new(Semaphore::new(0)))
            .clone()
    }
}

#[async_trait]
impl JobHandler for Control {
    async fn fit(&self, job: FitJob) -> FitReply {
        let model = job.model.as_str().to_string();
        self.specs
            .lock()
            .unwrap()
            .insert(model.clone(), job.spec.clone());
        if self.held.lock().unwrap().contains(&model) {
            let gate = self.gate(&model, job.version);
            let _pass = gate.acquire().await;
        }
        if self.doomed.lock().unwrap().contains(&model) {
            return Err(JobError::Failed("injected failure".to_string()));
        }
        self.inner.fit(job).await
    }

    async fn forecast(&self, job: ForecastJob) -> ForecastReply {
        let model = job.model.as_str().to_string();
        if self.forecasts_held.lock().unwrap().contains(&model) {
            let gate = self.gate(&format!("{model} forecast"), 0);
            *self
                .forecasts_waiting
                .lock()
                .unwrap()
                .entry(model.clone())
                .or_default() += 1;
            let _pass = gate.acquire().await;
            *self
                .forecasts_waiting
                .lock()
                .unwrap()
                .entry(model.clone())
                .or_default() -= 1;
        }
        self.inner.forecast(job).await
    }

    async fn backtest(&self, job: protocol::BacktestJob) -> protocol::BacktestReply {
        self.inner.backtest(job).await
    }
}
