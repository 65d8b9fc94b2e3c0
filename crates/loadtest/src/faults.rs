//! `horizon loadtest faults`: the service's guarantees under faults provoked
//! for real, measured from outside (RELIABILITY.md holds the figures):
//! - `store-restart`: distributed mode (gateway and workers as processes,
//!   the shared RabbitMQ in a namespace of its own) on a private PostgreSQL
//!   (never the shared one), restarted during a burst of fits and forecasts;
//! - `gateway-kill`: the same cluster, its gateway killed (SIGKILL) during
//!   fits and started again; clients retry under the same `Idempotency-Key`;
//! - `attack`: a slowloris and an oversized-forecast attack on an embedded
//!   server during a normal forecast load, against the same load alone.
//!
//! Clients retry what the service says may be retried (5xx, 408, 429, a
//! lost connection) until a deadline; a request is "lost" when it never got
//! its answer. Afterwards the store itself is read: versions per fit (more
//! than one is a duplicate) and versions still pending.

use crate::client::HttpConn;
use crate::{free_addr, measure, parse_duration, request, setup, wait_up, LoadError, Scenario};
use clap::{Args as ClapArgs, ValueEnum};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::ModelStore;
use test_services::postgres::PrivatePostgres;
use tokio::io::AsyncWriteExt;

/// Flags of `horizon loadtest faults`.
#[derive(ClapArgs, Debug, Clone)]
pub struct FaultArgs {
    /// Fault runs, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "store-restart,gateway-kill,embedded-kill,attack"
    )]
    pub faults: Vec<Fault>,
    /// RabbitMQ for the distributed runs (a namespace of their own in it).
    #[arg(
        long,
        env = "HORIZON_BROKER",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub broker: String,
    /// Clients fitting one new model after another.
    #[arg(long, default_value_t = 8)]
    pub fit_clients: usize,
    /// Clients forecasting (store-restart; the normal load of attack).
    #[arg(long, default_value_t = 4)]
    pub forecast_clients: usize,
    /// Length of the load (of each phase for attack).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// How long the store or the gateway stays down.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub down: Duration,
    /// Rounds of the attack run (the load alone, then under attack).
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Slowloris connections held open during the attack.
    #[arg(long, default_value_t = 300)]
    pub slowloris: usize,
    /// Fit clients retry without an `Idempotency-Key` (shows what the key
    /// prevents: duplicate versions).
    #[arg(long)]
    pub without_keys: bool,
}

/// One fault run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    StoreRestart,
    GatewayKill,
    /// The gateway kill on an embedded server (workers in its process).
    EmbeddedKill,
    Attack,
}

/// What a distributed fault run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The `horizon` binary to start the gateway and workers from.
    pub exe: PathBuf,
    pub broker: String,
    pub fit_clients: usize,
    /// Forecasting clients (store-restart only).
    pub forecast_clients: usize,
    /// Load before and after the fault, each.
    pub settle: Duration,
    pub down: Duration,
    pub workers: usize,
    /// Fits carry an `Idempotency-Key` (retries reuse it).
    pub idempotency_keys: bool,
}

/// What clients and the store saw in a distributed fault run.
#[derive(Debug, Clone, Default)]
pub struct FaultReport {
    /// Fits asked for (each of a model of its own, one key each).
    pub fits: usize,
    /// Fits never answered 200 before the deadline.
    pub fits_lost: usize,
    pub forecasts: usize,
    pub forecasts_lost: usize,
    /// Attempts that failed and were retried.
    pub retried_attempts: usize,
    /// Answers other than 200 that may not be retried (a bug if any).
    pub refused: BTreeMap<u16, usize>,
    /// Versions the store holds for the fitted models.
    pub versions: usize,
    /// Ready versions beyond one per fit (two results for one request).
    pub duplicates: usize,
    /// Fits with no ready version.
    pub fits_without_ready: usize,
    /// Versions still pending once the load is over and settled.
    pub pending: usize,
    /// Versions failed (e.g. "interrupted by a restart" of an embedded
    /// server; the retry then makes a new one).
    pub failed_versions: usize,
    /// Fits whose 200 named a version the store does not hold ready.
    pub version_mismatches: usize,
    /// Fits sent before the fault began and answered after it ended.
    pub fits_across_fault: usize,
    /// From the fault's end (store or gateway up again) to the first fit
    /// sent after it that was answered 200.
    pub recovery: Option<Duration>,
    /// Longest time without any fit answered 200 during the load.
    pub longest_fit_gap: Duration,
    /// Longest time without any forecast answered 200 (store-restart).
    pub longest_forecast_gap: Duration,
    /// Whole-request latency (first attempt to 200) of forecasts.
    pub forecast_p50_ms: f64,
    pub forecast_p99_ms: f64,
    pub fit_p99_ms: f64,
}

impl FaultReport {
    /// No request lost, exactly one ready version per fit (the one its
    /// answer named), nothing pending.
    pub fn correct(&self) -> bool {
        self.fits_lost == 0
            && self.forecasts_lost == 0
            && self.refused.is_empty()
            && self.duplicates == 0
            && self.fits_without_ready == 0
            && self.pending == 0
            && self.version_mismatches == 0
    }
}

/// Entry point of `horizon loadtest faults`.
pub async fn run(args: &FaultArgs) -> Result<(), LoadError> {
    let exe = std::env::current_exe().map_err(setup)?;
    let plan = Plan {
        exe: exe.clone(),
        broker: args.broker.clone(),
        fit_clients: args.fit_clients,
        forecast_clients: args.forecast_clients,
        settle: args.duration / 2,
        down: args.down,
        workers: 2,
        idempotency_keys: !args.without_keys,
    };
    for fault in &args.faults {
        match fault {
            Fault::StoreRestart | Fault::GatewayKill | Fault::EmbeddedKill => {
                let report = match fault {
                    Fault::StoreRestart => store_restart(&plan).await?,
                    Fault::GatewayKill => gateway_kill(&plan).await?,
                    _ => embedded_kill(&plan).await?,
                };
                print_report(*fault, &plan, &report);
            }
            Fault::Attack => {
                let runs = attack(&exe, args).await?;
                print_attack(args, &runs);
            }
        }
    }
    Ok(())
}

fn print_report(fault: Fault, plan: &Plan, r: &FaultReport) {
    let what = match fault {
        Fault::StoreRestart => format!(
            "PostgreSQL (private) stopped (-m fast) for {:?} during {} fit clients and {} forecast clients",
            plan.down, plan.fit_clients, plan.forecast_clients
        ),
        Fault::EmbeddedKill => format!(
            "embedded server (workers in its process) killed (SIGKILL), started again {:?} later, during {} fit clients",
            plan.down, plan.fit_clients
        ),
        _ => format!(
            "gateway killed (SIGKILL), started again {:?} later, during {} fit clients",
            plan.down, plan.fit_clients
        ),
    };
    let workers = if fault == Fault::EmbeddedKill {
        "workers in the server's process".to_string()
    } else {
        format!("{} worker processes", plan.workers)
    };
    println!(
        "\n{what}; {workers}, {:?} of load before and after, fits {} an Idempotency-Key\n",
        plan.settle,
        if plan.idempotency_keys {
            "with"
        } else {
            "WITHOUT"
        }
    );
    println!("| fits | in flight across the fault | lost | forecasts | lost | retried attempts | refused | versions | duplicates | fits without a ready version | pending | failed | recovery s | longest fit gap s | longest forecast gap s | forecast p50 ms | forecast p99 ms | fit p99 ms |");
    println!(
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    println!(
        "| {} | {} | {} | {} | {} | {} | {:?} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} |",
        r.fits,
        r.fits_across_fault,
        r.fits_lost,
        r.forecasts,
        r.forecasts_lost,
        r.retried_attempts,
        r.refused,
        r.versions,
        r.duplicates,
        r.fits_without_ready,
        r.pending,
        r.failed_versions,
        r.recovery
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .unwrap_or_else(|| "never".into()),
        r.longest_fit_gap.as_secs_f64(),
        r.longest_forecast_gap.as_secs_f64(),
        r.forecast_p50_ms,
        r.forecast_p99_ms,
        r.fit_p99_ms,
    );
    println!(
        "\n{}",
        if r.correct() {
            "correct: no request lost, one ready version per fit, none pending"
        } else {
            "NOT CORRECT: see the counts above"
        }
    );
}

// ---------------------------------------------------------------------------
// The cluster: private PostgreSQL, gateway and workers as processes.

struct Cluster {
    exe: PathBuf,
    addr: SocketAddr,
    broker: String,
    namespace: String,
    env: Vec<(String, String)>,
    worker_env: Vec<(String, String)>,
    gateway: Option<Child>,
    workers: Vec<Child>,
    logs: tempfile::TempDir,
    pg: Arc<PrivatePostgres>,
}

impl Cluster {
    async fn start(plan: &Plan, tag: &str, worker_env: &[(&str, &str)]) -> Result<Self, LoadError> {
        let pg = tokio::task::spawn_blocking(|| PrivatePostgres::try_start(None))
            .await
            .map_err(setup)?
            .map_err(setup)?;
        let namespace = format!("faults_{tag}_{}", std::process::id());
        let env = vec![
            ("HORIZON_BROKER".to_string(), plan.broker.clone()),
            ("HORIZON_STORE".to_string(), pg.url()),
            ("HORIZON_NAMESPACE".to_string(), namespace.clone()),
            ("HORIZON_DB_CONNECTIONS".to_string(), "8".to_string()),
            ("RUST_LOG".to_string(), "warn".to_string()),
        ];
        let mut cluster = Self {
            exe: plan.exe.clone(),
            addr: free_addr()?,
            broker: plan.broker.clone(),
            namespace,
            env,
            worker_env: worker_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            gateway: None,
            workers: Vec::new(),
            logs: tempfile::tempdir().map_err(setup)?,
            pg: Arc::new(pg),
        };
        cluster.start_gateway()?;
        for i in 0..plan.workers {
            let mut cmd = cluster.command("worker", &format!("worker{i}.log"))?;
            for (k, v) in &cluster.worker_env {
                cmd.env(k, v);
            }
            cluster.workers.push(cmd.spawn().map_err(setup)?);
        }
        if let Err(e) = wait_up(cluster.addr, "GET", "/readyz", b"").await {
            let log = cluster.log_tail("gateway.log");
            cluster.cleanup().await;
            return Err(LoadError::Setup(format!("{e}; gateway log:\n{log}")));
        }
        Ok(cluster)
    }

    fn command(&self, role: &str, log: &str) -> Result<Command, LoadError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.path().join(log))
            .map_err(setup)?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg(role)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("HORIZON_ADMIN_KEY")
            .env_remove("HORIZON_FAULT_ABORT_ON_MODEL")
            .env_remove("HORIZON_FAULT_ABORT_BEFORE_DISPATCH")
            .env_remove("HORIZON_FAULT_DELAY_MS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        Ok(cmd)
    }

    fn start_gateway(&mut self) -> Result<(), LoadError> {
        let mut cmd = self.command("serve", "gateway.log")?;
        cmd.args(["--listen", &self.addr.to_string()])
            .env("HORIZON_WAIT_TIMEOUT", "60s")
            .env("HORIZON_FIT_TIMEOUT", "120s")
            .env("HORIZON_FORECAST_TIMEOUT", "30s")
            // Every version a fit made is counted: no pruning.
            .env("HORIZON_KEEP_VERSIONS", "1000000");
        self.gateway = Some(cmd.spawn().map_err(setup)?);
        Ok(())
    }

    /// `kill -9` of the gateway (std's `kill` is SIGKILL on Unix).
    fn kill_gateway(&mut self) {
        if let Some(mut g) = self.gateway.take() {
            let _ = g.kill();
            let _ = g.wait();
        }
    }

    fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.logs.path().join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// A store on the cluster's schema, to count versions.
    async fn store(&self) -> Result<store::postgres::PgStore, LoadError> {
        store::postgres::PgStore::connect(&store::postgres::PgConfig::new(
            self.pg.url(),
            self.namespace.clone(),
        ))
        .await
        .map_err(setup)
    }

    async fn cleanup(mut self) {
        self.kill_gateway();
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = transport::amqp::delete_topology(&self.broker, &self.namespace).await;
        // The private PostgreSQL and the logs go when `self` is dropped.
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_gateway();
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// Clients that retry.

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(130);
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How long after the load a request may still retry before it is lost.
const GIVE_UP_AFTER: Duration = Duration::from_secs(150);

/// One answered (or given up) logical request.
struct Done {
    sent: Instant,
    answered: Option<Instant>,
    /// Of the last successful attempt (the one answered).
    last_sent: Instant,
    /// The version named by a fit's 200.
    version: Option<i64>,
    model: String,
}

#[derive(Default)]
struct Tally {
    done: Vec<Done>,
    retried: usize,
    refused: BTreeMap<u16, usize>,
}

fn retryable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// Sends `method path` until it is answered 200 or `give_up` passes.
#[allow(clippy::too_many_arguments)]
async fn until_ok(
    conn: &mut Option<HttpConn>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    give_up: Instant,
    tally: &mut Tally,
) -> (Instant, Option<Instant>, Option<Vec<u8>>) {
    loop {
        let sent = Instant::now();
        if conn.is_none() {
            *conn = HttpConn::connect(addr).await.ok();
        }
        let answer = match conn.as_mut() {
            Some(c) => {
                match tokio::time::timeout(
                    ATTEMPT_TIMEOUT,
                    c.request_with(method, path, headers, body),
                )
                .await
                {
                    Ok(Ok(a)) => Some(a),
                    _ => None,
                }
            }
            None => None,
        };
        match answer {
            Some((200, body)) => return (sent, Some(Instant::now()), Some(body)),
            Some((status, _)) if !retryable(status) => {
                *tally.refused.entry(status).or_default() += 1;
                return (sent, None, None);
            }
            Some(_) => tally.retried += 1,
            None => {
                tally.retried += 1;
                *conn = None;
            }
        }
        if Instant::now() > give_up {
            return (sent, None, None);
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

fn fit_body(seed: usize) -> Vec<u8> {
    let values = |s: usize| -> Vec<f64> {
        (0..48)
            .map(|t| {
                100.0
                    + (s % 7) as f64
                    + t as f64 * 0.5
                    + 10.0 * ((t % 12) as f64 / 12.0 * std::f64::consts::TAU).sin()
            })
            .collect()
    };
    serde_json::to_vec(&serde_json::json!({
        "series": [{"id": "a", "values": values(seed)}, {"id": "b", "values": values(seed + 1)}],
        "season_length": 12,
        "method": "ets",
    }))
    .unwrap_or_default()
}

/// Fits one new model after another (`{prefix}{client}_{i}`, key
/// `k{client}_{i}` when `keyed`) until `stop`.
async fn fit_client(
    addr: SocketAddr,
    prefix: String,
    client: usize,
    stop: Instant,
    keyed: bool,
) -> Tally {
    let mut tally = Tally::default();
    let mut conn = None;
    let mut i = 0;
    while Instant::now() < stop {
        let model = format!("{prefix}{client}_{i}");
        let key = format!("k{client}_{i}");
        let body = fit_body(client * 1000 + i);
        let path = format!("/v1/models/{model}");
        let headers = [("Idempotency-Key", key.as_str())];
        let first = Instant::now();
        let (last_sent, answered, answer) = until_ok(
            &mut conn,
            addr,
            "PUT",
            &path,
            &headers[..usize::from(keyed)],
            &body,
            stop + GIVE_UP_AFTER,
            &mut tally,
        )
        .await;
        let version = answer
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["data"]["version"].as_i64());
        tally.done.push(Done {
            sent: first,
            answered,
            last_sent,
            version,
            model,
        });
        i += 1;
    }
    tally
}

async fn forecast_client(addr: SocketAddr, stop: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut conn = None;
    let body = br#"{"horizon":12,"level":[95]}"#;
    while Instant::now() < stop {
        let first = Instant::now();
        let (last_sent, answered, _) = until_ok(
            &mut conn,
            addr,
            "POST",
            "/v1/models/base/forecast",
            &[],
            body,
            stop + GIVE_UP_AFTER,
            &mut tally,
        )
        .await;
        tally.done.push(Done {
            sent: first,
            answered,
            last_sent,
            version: None,
            model: String::new(),
        });
    }
    tally
}

fn merge(tallies: Vec<Tally>) -> Tally {
    let mut all = Tally::default();
    for t in tallies {
        all.done.extend(t.done);
        all.retried += t.retried;
        for (k, v) in t.refused {
            *all.refused.entry(k).or_default() += v;
        }
    }
    all
}

fn percentile_ms(done: &[Done], p: f64) -> f64 {
    let mut l: Vec<Duration> = done
        .iter()
        .filter_map(|d| d.answered.map(|a| a - d.sent))
        .collect();
    if l.is_empty() {
        return 0.0;
    }
    l.sort_unstable();
    let i = ((l.len() as f64 - 1.0) * p).round() as usize;
    l[i.min(l.len() - 1)].as_secs_f64() * 1000.0
}

/// Longest time within `[from, to]` without an answer.
fn longest_gap(done: &[Done], from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = done
        .iter()
        .filter_map(|d| d.answered)
        .filter(|a| *a >= from && *a <= to)
        .collect();
    times.sort_unstable();
    let mut gap = Duration::ZERO;
    let mut last = from;
    for t in times.into_iter().chain(std::iter::once(to)) {
        gap = gap.max(t - last);
        last = t;
    }
    gap
}

async fn join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Result<Vec<T>, LoadError> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.map_err(setup)?);
    }
    Ok(out)
}

/// Where the versions of a run are read: the store itself (distributed),
/// or the gateway's listing of it (embedded: its SQLite file belongs to
/// the running server).
enum Versions<'a> {
    Store(&'a store::postgres::PgStore),
    Http(SocketAddr),
}

#[derive(PartialEq)]
enum Status {
    Pending,
    Ready,
    Failed,
}

impl Versions<'_> {
    async fn of(&self, model: &str) -> Result<Vec<(i64, Status)>, LoadError> {
        match self {
            Versions::Store(store) => {
                let name = protocol::ModelName::parse(model).map_err(setup)?;
                let listed = store
                    .versions(&name, store::Page::default())
                    .await
                    .map_err(setup)?;
                Ok(listed
                    .map(|m| m.versions)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| {
                        let status = match v.status {
                            store::VersionStatus::Pending => Status::Pending,
                            store::VersionStatus::Ready => Status::Ready,
                            store::VersionStatus::Failed { .. } => Status::Failed,
                        };
                        (v.version, status)
                    })
                    .collect())
            }
            Versions::Http(addr) => {
                let (status, body) =
                    request(*addr, "GET", &format!("/v1/models/{model}?limit=1000"), b"").await?;
                if status == 404 {
                    return Ok(Vec::new());
                }
                let answer: serde_json::Value = serde_json::from_slice(&body).map_err(setup)?;
                if status != 200 {
                    return Err(LoadError::Setup(format!(
                        "GET /v1/models/{model}: {status} {answer}"
                    )));
                }
                Ok(answer["data"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| {
                        let status = match v["status"].as_str() {
                            Some("ready") => Status::Ready,
                            Some("pending") => Status::Pending,
                            _ => Status::Failed,
                        };
                        (v["version"].as_i64().unwrap_or(-1), status)
                    })
                    .collect())
            }
        }
    }
}

/// Reads the versions of every fitted model once the load is over,
/// waiting (bounded) for pending versions to settle.
async fn count_versions(
    source: Versions<'_>,
    fits: &Tally,
    report: &mut FaultReport,
) -> Result<(), LoadError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut r = FaultReport::default();
        for d in &fits.done {
            let list = source.of(&d.model).await?;
            let ready = list.iter().filter(|(_, s)| *s == Status::Ready).count();
            r.versions += list.len();
            r.duplicates += ready.saturating_sub(1);
            r.fits_without_ready += usize::from(ready == 0);
            r.pending += list.iter().filter(|(_, s)| *s == Status::Pending).count();
            r.failed_versions += list.iter().filter(|(_, s)| *s == Status::Failed).count();
            if let Some(answered) = d.version {
                if !list
                    .iter()
                    .any(|(v, s)| *v == answered && *s == Status::Ready)
                {
                    r.version_mismatches += 1;
                }
            }
        }
        if r.pending == 0 || Instant::now() > deadline {
            report.versions = r.versions;
            report.duplicates = r.duplicates;
            report.fits_without_ready = r.fits_without_ready;
            report.pending = r.pending;
            report.failed_versions = r.failed_versions;
            report.version_mismatches = r.version_mismatches;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The instants of one run: load start and end, fault start and end.
struct Times {
    from: Instant,
    to: Instant,
    down: Instant,
    back: Instant,
}

fn fill(report: &mut FaultReport, fits: &Tally, forecasts: &Tally, t: &Times) {
    let (from, to, back) = (t.from, t.to, t.back);
    report.fits_across_fault = fits
        .done
        .iter()
        .filter(|d| d.sent < t.down && d.answered.is_some_and(|a| a > back))
        .count();
    report.fits = fits.done.len();
    report.fits_lost = fits.done.iter().filter(|d| d.answered.is_none()).count();
    report.forecasts = forecasts.done.len();
    report.forecasts_lost = forecasts
        .done
        .iter()
        .filter(|d| d.answered.is_none())
        .count();
    report.retried_attempts = fits.retried + forecasts.retried;
    report.refused = fits.refused.clone();
    for (k, v) in &forecasts.refused {
        *report.refused.entry(*k).or_default() += v;
    }
    report.recovery = fits
        .done
        .iter()
        .filter(|d| d.last_sent >= back)
        .filter_map(|d| d.answered)
        .min()
        .map(|a| a - back);
    report.longest_fit_gap = longest_gap(&fits.done, from, to);
    report.longest_forecast_gap = if forecasts.done.is_empty() {
        Duration::ZERO
    } else {
        longest_gap(&forecasts.done, from, to)
    };
    report.forecast_p50_ms = percentile_ms(&forecasts.done, 0.50);
    report.forecast_p99_ms = percentile_ms(&forecasts.done, 0.99);
    report.fit_p99_ms = percentile_ms(&fits.done, 0.99);
}

/// PostgreSQL (private) stopped with `-m fast` and started again during a
/// burst of fits and forecasts in distributed mode.
pub async fn store_restart(plan: &Plan) -> Result<FaultReport, LoadError> {
    let cluster = Cluster::start(plan, "pg", &[]).await?;
    let result = store_restart_on(&cluster, plan).await;
    cluster.cleanup().await;
    result
}

async fn store_restart_on(cluster: &Cluster, plan: &Plan) -> Result<FaultReport, LoadError> {
    let addr = cluster.addr;
    let (status, body) = request(addr, "PUT", "/v1/models/base", &fit_body(0)).await?;
    if status != 200 {
        return Err(LoadError::Setup(format!(
            "fit of the forecast model: {status} {}",
            String::from_utf8_lossy(&body)
        )));
    }
    let from = Instant::now();
    let stop = from + plan.settle * 2 + plan.down;
    let fits: Vec<_> = (0..plan.fit_clients)
        .map(|c| {
            tokio::spawn(fit_client(
                addr,
                "pg".into(),
                c,
                stop,
                plan.idempotency_keys,
            ))
        })
        .collect();
    let forecasts: Vec<_> = (0..plan.forecast_clients)
        .map(|_| tokio::spawn(forecast_client(addr, stop)))
        .collect();
    tokio::time::sleep(plan.settle).await;
    let pg = cluster.pg.clone();
    tokio::task::spawn_blocking(move || pg.try_stop_server())
        .await
        .map_err(setup)?
        .map_err(setup)?;
    // Down from here: `pg_ctl -w stop` returns once the server is gone.
    let down = Instant::now();
    tokio::time::sleep(plan.down).await;
    let pg = cluster.pg.clone();
    tokio::task::spawn_blocking(move || pg.try_start_server())
        .await
        .map_err(setup)?
        .map_err(setup)?;
    let back = Instant::now();
    let fits = merge(join(fits).await?);
    let forecasts = merge(join(forecasts).await?);
    let mut report = FaultReport::default();
    let times = Times {
        from,
        to: stop,
        down,
        back,
    };
    fill(&mut report, &fits, &forecasts, &times);
    let store = cluster.store().await?;
    let counted = count_versions(Versions::Store(&store), &fits, &mut report).await;
    store.close().await;
    counted.map(|()| report)
}

/// The gateway killed (SIGKILL) while fits are in flight on slow workers,
/// started again after `plan.down`; clients retry with the same key.
pub async fn gateway_kill(plan: &Plan) -> Result<FaultReport, LoadError> {
    // Slow workers, so that fits are surely in flight when the gateway dies.
    let mut cluster = Cluster::start(plan, "gw", &[("HORIZON_FAULT_DELAY_MS", "400")]).await?;
    let result = gateway_kill_on(&mut cluster, plan).await;
    cluster.cleanup().await;
    result
}

async fn gateway_kill_on(cluster: &mut Cluster, plan: &Plan) -> Result<FaultReport, LoadError> {
    let addr = cluster.addr;
    let (mut report, fits) = fits_across_a_kill(addr, "gw", plan, async {
        cluster.kill_gateway();
        tokio::time::sleep(plan.down).await;
        cluster.start_gateway()
    })
    .await?;
    let store = cluster.store().await?;
    let counted = count_versions(Versions::Store(&store), &fits, &mut report).await;
    store.close().await;
    counted.map(|()| report)
}

/// Fit clients (keyed as `plan` says) on `addr` until the fault is over;
/// after `plan.settle`, `kill_and_restart` kills the server and brings it
/// back. What the clients saw, with the kill's times; versions not counted.
async fn fits_across_a_kill(
    addr: SocketAddr,
    prefix: &str,
    plan: &Plan,
    kill_and_restart: impl std::future::Future<Output = Result<(), LoadError>>,
) -> Result<(FaultReport, Tally), LoadError> {
    let from = Instant::now();
    let stop = from + plan.settle * 2 + plan.down;
    let fits: Vec<_> = (0..plan.fit_clients)
        .map(|c| {
            tokio::spawn(fit_client(
                addr,
                prefix.into(),
                c,
                stop,
                plan.idempotency_keys,
            ))
        })
        .collect();
    tokio::time::sleep(plan.settle).await;
    let down = Instant::now();
    kill_and_restart.await?;
    let back = Instant::now();
    let fits = merge(join(fits).await?);
    let mut report = FaultReport::default();
    let times = Times {
        from,
        to: stop,
        down,
        back,
    };
    fill(&mut report, &fits, &Tally::default(), &times);
    Ok((report, fits))
}

/// [`gateway_kill`] on an embedded server (`horizon serve` with its own
/// workers and SQLite store): the process with its fits in flight is killed
/// (SIGKILL) and started again on the same data directory.
pub async fn embedded_kill(plan: &Plan) -> Result<FaultReport, LoadError> {
    let dir = tempfile::tempdir().map_err(setup)?;
    let addr = free_addr()?;
    let start = || {
        Command::new(&plan.exe)
            .args(["serve", "--listen", &addr.to_string()])
            .env("HORIZON_DATA_DIR", dir.path())
            .env("HORIZON_KEEP_VERSIONS", "1000000")
            // Slow fits, so that every client has one in flight at the kill.
            .env("HORIZON_FAULT_DELAY_MS", "400")
            .env("RUST_LOG", "error")
            .env_remove("HORIZON_ADMIN_KEY")
            .env_remove("HORIZON_BROKER")
            .env_remove("HORIZON_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(setup)
    };
    let mut server = start()?;
    let result = async {
        wait_up(addr, "GET", "/readyz", b"").await?;
        let (mut report, fits) = fits_across_a_kill(addr, "em", plan, async {
            let _ = server.kill();
            let _ = server.wait();
            tokio::time::sleep(plan.down).await;
            server = start()?;
            Ok(())
        })
        .await?;
        count_versions(Versions::Http(addr), &fits, &mut report).await?;
        Ok(report)
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    result
}

// ---------------------------------------------------------------------------
// Attacks during a normal load (embedded server).

/// One phase of the attack run.
#[derive(Debug, Clone)]
pub struct AttackRun {
    pub attacked: bool,
    pub normal: crate::Measured,
    /// Answers to the oversized forecasts, by status (0: no answer).
    pub oversized: BTreeMap<u16, usize>,
    /// Most slowloris connections open at once.
    pub slowloris_open: usize,
    /// Slowloris connections the server closed.
    pub slowloris_closed: usize,
}

async fn attack(exe: &Path, args: &FaultArgs) -> Result<Vec<AttackRun>, LoadError> {
    let dir = tempfile::tempdir().map_err(setup)?;
    let addr = free_addr()?;
    let mut server = Command::new(exe)
        .args(["serve", "--listen", &addr.to_string()])
        .env("HORIZON_DATA_DIR", dir.path())
        .env("RUST_LOG", "error")
        .env_remove("HORIZON_ADMIN_KEY")
        .env_remove("HORIZON_BROKER")
        .env_remove("HORIZON_STORE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(setup)?;
    let result = attack_on(addr, args).await;
    let _ = server.kill();
    let _ = server.wait();
    result
}

async fn attack_on(addr: SocketAddr, args: &FaultArgs) -> Result<Vec<AttackRun>, LoadError> {
    wait_up(addr, "GET", "/readyz", b"").await?;
    let series = |n: usize| -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| {
                let values: Vec<f64> = (0..48).map(|t| ((i * 7 + t) % 13) as f64).collect();
                serde_json::json!({"id": format!("s{i}"), "values": values})
            })
            .collect()
    };
    for (model, n, method) in [("normal", 2, "ses"), ("wide", 200, "naive")] {
        let body = serde_json::to_vec(&serde_json::json!({"series": series(n), "method": method}))
            .map_err(setup)?;
        let (status, answer) = request(addr, "PUT", &format!("/v1/models/{model}"), &body).await?;
        if status != 200 {
            return Err(LoadError::Setup(format!(
                "fit of {model}: {status} {}",
                String::from_utf8_lossy(&answer)
            )));
        }
    }
    let normal = br#"{"horizon":12,"level":[95]}"#;
    let mut runs = Vec::new();
    for _ in 0..args.rounds.max(1) {
        for attacked in [false, true] {
            let stop = Instant::now() + args.duration;
            let mut oversized = Vec::new();
            let mut slow = None;
            if attacked {
                slow = Some(tokio::spawn(slowloris(addr, args.slowloris, stop)));
                oversized = (0..2)
                    .map(|_| tokio::spawn(oversized_client(addr, stop)))
                    .collect();
            }
            let m = measure(
                Scenario::Embedded,
                addr,
                "/v1/models/normal/forecast",
                normal,
                args.forecast_clients,
                Duration::ZERO,
                args.duration,
            )
            .await;
            let mut answers = BTreeMap::new();
            for counts in join(oversized).await? {
                for (k, v) in counts {
                    *answers.entry(k).or_default() += v;
                }
            }
            let (open, closed) = match slow {
                Some(s) => s.await.map_err(setup)?,
                None => (0, 0),
            };
            let run = AttackRun {
                attacked,
                normal: m,
                oversized: answers,
                slowloris_open: open,
                slowloris_closed: closed,
            };
            eprintln!(
                "{}: {} forecasts, {} errors, p50 {:.1} ms, p99 {:.1} ms",
                if attacked { "under attack" } else { "alone" },
                run.normal.requests,
                run.normal.errors,
                run.normal.p50_ms,
                run.normal.p99_ms
            );
            runs.push(run);
        }
    }
    Ok(runs)
}

/// Oversized forecasts (10,000 steps × 200 series × 2 levels: 50 M
/// numbers) every 50 ms, each on a new connection (the server closes one
/// after a refusal); counts the answers by status (0: no answer).
async fn oversized_client(addr: SocketAddr, stop: Instant) -> BTreeMap<u16, usize> {
    let body = br#"{"horizon":10000,"level":[80,95]}"#;
    let mut counts = BTreeMap::new();
    while Instant::now() < stop {
        let status = match request(addr, "POST", "/v1/models/wide/forecast", body).await {
            Ok((s, _)) => s,
            Err(_) => 0,
        };
        *counts.entry(status).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    counts
}

/// Holds `n` connections that send a request's header one line every
/// 500 ms and never finish it; reopens those the server closes. Returns
/// (most open at once, how many the server closed).
async fn slowloris(addr: SocketAddr, n: usize, stop: Instant) -> (usize, usize) {
    let mut socks: Vec<tokio::net::TcpStream> = Vec::new();
    let (mut most, mut closed) = (0, 0);
    while Instant::now() < stop {
        while socks.len() < n {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(mut s) => {
                    if s.write_all(b"POST /v1/models/x HTTP/1.1\r\nHost: a\r\n")
                        .await
                        .is_ok()
                    {
                        socks.push(s);
                    }
                }
                Err(_) => break,
            }
        }
        most = most.max(socks.len());
        let mut alive = Vec::with_capacity(socks.len());
        for mut s in socks.drain(..) {
            let mut byte = [0u8; 64];
            // An answer (e.g. 408) or end of stream: the server let go.
            let gone = match s.try_read(&mut byte) {
                Ok(_) => true,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            };
            if gone || s.write_all(b"X-a: b\r\n").await.is_err() {
                closed += 1;
            } else {
                alive.push(s);
            }
        }
        socks = alive;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (most, closed)
}

fn print_attack(args: &FaultArgs, runs: &[AttackRun]) {
    println!(
        "\nNormal load: {} connections forecasting (horizon 12, one level) a 2-series model for {:?}; attack: {} slowloris connections + 2 clients sending forecasts of 10,000 steps × 200 series × 2 levels every 50 ms\n",
        args.forecast_clients, args.duration, args.slowloris
    );
    println!("| phase | normal forecasts | errors | p50 ms | p99 ms | oversized answers | slowloris open (most) | slowloris closed by the server |");
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    for r in runs {
        let answers: Vec<String> = r
            .oversized
            .iter()
            .map(|(s, n)| {
                format!(
                    "{n} × {}",
                    if *s == 0 {
                        "no answer".to_string()
                    } else {
                        s.to_string()
                    }
                )
            })
            .collect();
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {} | {} | {} |",
            if r.attacked { "under attack" } else { "alone" },
            r.normal.requests,
            r.normal.errors,
            r.normal.p50_ms,
            r.normal.p99_ms,
            answers.join(", "),
            r.slowloris_open,
            r.slowloris_closed
        );
    }
}
