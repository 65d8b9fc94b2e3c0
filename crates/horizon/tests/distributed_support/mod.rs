//! Shared by the distributed_*.rs tests: starts the real `horizon` binary as
//! one gateway and several workers against the real RabbitMQ and PostgreSQL
//! on loopback, each cluster in its own namespace (queue and exchange prefix,
//! PostgreSQL schema), and removes everything when dropped.
//!
//! Without the services, tests print a loud "SKIPPED" and pass, unless CI or
//! HORIZON_REQUIRE_SERVICES=1 is set: then they fail.

#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BROKER: &str = test_services::BROKER_URL;
pub const STORE: &str = test_services::STORE_URL;

/// Whether RabbitMQ and PostgreSQL answer; fails or loudly skips otherwise.
pub fn services_or_skip(test: &str) -> bool {
    test_services::available_or_skip(test, &[test_services::RABBITMQ, test_services::POSTGRES])
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One gateway and its workers, all real processes.
pub struct Cluster {
    pub namespace: String,
    pub base: String,
    gateway: Option<Child>,
    workers: Vec<Option<Child>>,
    logs: PathBuf,
    worker_env: Vec<(String, String)>,
    /// Extra environment of the gateway (e.g. a fault hook) at its next start.
    pub gateway_env: Vec<(String, String)>,
    port: u16,
}

impl Cluster {
    /// Starts a gateway and `workers` workers; `worker_env` goes to each
    /// worker. Waits until the gateway is ready.
    pub async fn start(tag: &str, workers: usize, worker_env: &[(&str, &str)]) -> Cluster {
        let mut cluster = Self::launch(tag, workers, worker_env);
        cluster.wait_ready(Duration::from_secs(60)).await;
        cluster
    }

    /// Starts a gateway and `workers` workers without waiting for anything.
    pub fn launch(tag: &str, workers: usize, worker_env: &[(&str, &str)]) -> Cluster {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let namespace = format!("t_{tag}_{}_{}", std::process::id(), nanos % 100_000);
        let logs = std::env::temp_dir()
            .join("horizon-distributed-tests")
            .join(&namespace);
        std::fs::create_dir_all(&logs).expect("log directory");
        let port = free_port();
        let mut cluster = Cluster {
            base: format!("http://127.0.0.1:{port}"),
            namespace,
            gateway: None,
            workers: Vec::new(),
            logs,
            worker_env: worker_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            gateway_env: Vec::new(),
            port,
        };
        cluster.start_gateway();
        for _ in 0..workers {
            cluster.start_worker();
        }
        cluster
    }

    fn command(&self, role: &str, log: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_horizon"));
        cmd.arg(role)
            .env("HORIZON_BROKER", BROKER)
            .env("HORIZON_STORE", STORE)
            .env("HORIZON_NAMESPACE", &self.namespace)
            .env("HORIZON_DB_CONNECTIONS", "8")
            .env("RUST_LOG", "warn,horizon=info,transport=debug")
            .env_remove("HORIZON_FAULT_ABORT_ON_MODEL")
            .env_remove("HORIZON_FAULT_DELAY_MS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.logs.join(log))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            );
        cmd
    }

    pub fn start_gateway(&mut self) {
        let mut cmd = self.command("serve", "gateway.log");
        cmd.args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .env("HORIZON_WAIT_TIMEOUT", "60s")
            .env("HORIZON_FORECAST_TIMEOUT", "30s")
            .env("HORIZON_FIT_TIMEOUT", "120s")
            // The tests count every version a burst made: no pruning.
            .env("HORIZON_KEEP_VERSIONS", "1000000")
            .env_remove("HORIZON_FAULT_ABORT_BEFORE_DISPATCH");
        for (k, v) in &self.gateway_env {
            cmd.env(k, v);
        }
        self.gateway = Some(cmd.spawn().expect("start the gateway"));
    }

    /// `kill -9` of the gateway.
    pub fn kill_gateway(&mut self) {
        if let Some(mut child) = self.gateway.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (bounded) until the gateway process has exited by itself.
    pub async fn gateway_exited(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(g) = self.gateway.as_mut() {
                if matches!(g.try_wait(), Ok(Some(_))) {
                    self.gateway = None;
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Starts one more worker; returns its index.
    pub fn start_worker(&mut self) -> usize {
        let i = self.workers.len();
        let mut cmd = self.command("worker", &format!("worker{i}.log"));
        for (k, v) in &self.worker_env {
            cmd.env(k, v);
        }
        self.workers
            .push(Some(cmd.spawn().expect("start a worker")));
        i
    }

    /// Starts a worker without the extra environment (e.g. fault injection).
    pub fn start_plain_worker(&mut self) -> usize {
        let i = self.workers.len();
        let cmd = self.command("worker", &format!("worker{i}.log"));
        let mut cmd = cmd;
        self.workers
            .push(Some(cmd.spawn().expect("start a worker")));
        i
    }

    /// `kill -9` of worker `i`.
    pub fn kill_worker(&mut self, i: usize) {
        if let Some(mut child) = self.workers.get_mut(i).and_then(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Workers still running.
    pub fn live_workers(&mut self) -> usize {
        self.workers
            .iter_mut()
            .filter_map(|w| w.as_mut())
            .map(|c| matches!(c.try_wait(), Ok(None)))
            .filter(|alive| *alive)
            .count()
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self, limit: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(g) = self.gateway.as_mut() {
                if let Ok(Some(status)) = g.try_wait() {
                    panic!(
                        "the gateway exited ({status}); log: {}",
                        self.log_tail("gateway.log")
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "the gateway was not ready within {limit:?}; log: {}",
                self.log_tail("gateway.log")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Lines of all the workers' logs that contain `needle`.
    pub fn count_in_worker_logs(&self, needle: &str) -> usize {
        (0..self.workers.len())
            .map(|i| {
                std::fs::read_to_string(self.logs.join(format!("worker{i}.log")))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains(needle))
                    .count()
            })
            .sum()
    }

    pub fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.logs.join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self
            .workers
            .iter_mut()
            .chain(std::iter::once(&mut self.gateway))
            .filter_map(Option::take)
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        let namespace = self.namespace.clone();
        // Own thread and runtime: this may run inside the test's runtime.
        let cleaned = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let a = transport::amqp::delete_topology(BROKER, &namespace).await;
                let b = store::postgres::PgStore::drop_schema(STORE, &namespace).await;
                Some(a.is_ok() && b.is_ok())
            })
        })
        .join();
        if std::thread::panicking() || std::env::var_os("HORIZON_TEST_KEEP_LOGS").is_some() {
            eprintln!("logs of the failed cluster are in {}", self.logs.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.logs);
            if !matches!(cleaned, Ok(Some(true))) {
                eprintln!("warning: could not clean up namespace {}", self.namespace);
            }
        }
    }
}

/// A JSend answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn jsend(&self) -> &str {
        self.body["status"].as_str().unwrap_or("")
    }
    pub fn version(&self) -> Option<i64> {
        self.body["data"]["version"].as_i64()
    }
}

pub async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Result<Answer, String> {
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = r.status().as_u16();
    let text = r
        .text()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| format!("not JSON ({e}), status {status}: {text}"))?;
    Ok(Answer { status, body })
}

impl Cluster {
    pub async fn fit(
        &self,
        client: &reqwest::Client,
        model: &str,
        values: &[f64],
    ) -> Result<Answer, String> {
        send(
            client,
            reqwest::Method::PUT,
            format!("{}/v1/models/{model}", self.base),
            Some(serde_json::json!({
                "series": [{"id": "a", "values": values}],
                "method": "naive",
            })),
        )
        .await
    }

    pub async fn forecast(&self, client: &reqwest::Client, model: &str) -> Result<Answer, String> {
        send(
            client,
            reqwest::Method::POST,
            format!("{}/v1/models/{model}/forecast", self.base),
            Some(serde_json::json!({"horizon": 3})),
        )
        .await
    }

    /// (version, status) of every version of `model`, from the gateway.
    pub async fn versions(&self, client: &reqwest::Client, model: &str) -> Vec<(i64, String)> {
        // Page by page: a listing holds at most 1,000 versions.
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let a = send(
                client,
                reqwest::Method::GET,
                format!("{}/v1/models/{model}?limit=1000{after}", self.base),
                None,
            )
            .await
            .expect("describe");
            if let Some(vs) = a.body["data"]["versions"].as_array() {
                out.extend(vs.iter().map(|v| {
                    (
                        v["version"].as_i64().unwrap_or(-1),
                        v["status"].as_str().unwrap_or("").to_string(),
                    )
                }));
            }
            match a.body["data"]["next_after"].as_i64() {
                Some(next) => after = format!("&after={next}"),
                None => break out,
            }
        }
    }
}

/// A series whose naive forecast reveals which fit produced it: all values
/// equal to `tag`.
pub fn tagged(tag: f64) -> Vec<f64> {
    vec![tag; 8]
}
