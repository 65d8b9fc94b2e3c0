//! `horizon loadtest`: forecasts per second and latency of the HTTP API with
//! cached models, on loopback, bounded in time.
//!
//! Scenarios, each in its own processes started from this same binary:
//! - `embedded`: `horizon serve` (in-process workers, SQLite store);
//! - `distributed`: `horizon serve --broker --store` and `--workers` worker
//!   processes, through RabbitMQ and PostgreSQL;
//! - `bare-axum`: an axum handler doing the same JSON work, nothing else;
//! - `bare-lapin`: that handler sending the work through the same broker to
//!   bare lapin worker processes and back.
//!
//! The load generator runs in this process, on the same cores as the
//! servers, with `connections` keep-alive connections each sending one
//! request after another. Prints a Markdown table.
//!
//! `horizon loadtest faults` runs the fault scenarios of [`faults`] instead.

mod bare;
mod client;
pub mod faults;

use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use client::HttpConn;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub role: Option<Role>,
    /// Scenarios to run, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "bare-axum,embedded,bare-lapin,distributed"
    )]
    pub scenarios: Vec<Scenario>,
    /// Concurrent connections; each value is one measurement per scenario.
    #[arg(long, value_delimiter = ',', default_value = "8,64")]
    pub connections: Vec<usize>,
    /// Measured time per measurement, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured warm-up before each measurement.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// RabbitMQ for the distributed and bare-lapin scenarios.
    #[arg(
        long,
        env = "HORIZON_BROKER",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub broker: String,
    /// PostgreSQL for the distributed scenario.
    #[arg(
        long,
        env = "HORIZON_STORE",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub store: String,
    /// Worker processes in the distributed and bare-lapin scenarios.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Forecasts as persistent messages with publisher confirms.
    #[arg(long)]
    pub persistent: bool,
    /// Most forecasts per message in the distributed scenario (the gateway's
    /// `--forecast-batch`); 1 sends each forecast alone, like the bare lapin
    /// ceiling does. Unset: the gateway's default.
    #[arg(long, env = "HORIZON_FORECAST_BATCH", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub forecast_batch: Option<u16>,
    /// Forecast horizon of each request.
    #[arg(long, default_value_t = 12)]
    pub horizon: usize,
}

/// The fault runs, or the helper processes the benchmark starts (hidden).
#[derive(Subcommand, Debug)]
pub enum Role {
    /// Faults provoked under load (PostgreSQL restart, gateway kill -9,
    /// slowloris and oversized forecasts): requests lost, duplicates,
    /// versions pending, recovery time, p99.
    Faults(faults::FaultArgs),
    #[command(hide = true)]
    BareAxum {
        #[arg(long)]
        listen: SocketAddr,
    },
    #[command(hide = true)]
    BareLapinGateway {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        broker: String,
        #[arg(long)]
        queue: String,
        #[arg(long)]
        persistent: bool,
    },
    #[command(hide = true)]
    BareLapinWorker {
        #[arg(long)]
        broker: String,
        #[arg(long)]
        queue: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Embedded,
    Distributed,
    BareAxum,
    BareLapin,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Embedded => "embedded (horizon serve)",
            Scenario::Distributed => "distributed (RabbitMQ + PostgreSQL)",
            Scenario::BareAxum => "bare axum handler",
            Scenario::BareLapin => "bare axum + lapin request/reply",
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("bad duration '{s}': {e}"))
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Setup(String),
}

fn setup(e: impl std::fmt::Display) -> LoadError {
    LoadError::Setup(e.to_string())
}

/// One measurement.
#[derive(Debug, Clone)]
pub struct Measured {
    pub scenario: Scenario,
    pub connections: usize,
    pub requests: usize,
    pub errors: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Entry point of `horizon loadtest`.
pub fn run(args: Args) -> Result<(), LoadError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(setup)?;
    runtime.block_on(async move {
        match args.role {
            Some(Role::BareAxum { listen }) => bare::serve_axum(listen).await.map_err(setup),
            Some(Role::BareLapinGateway {
                listen,
                ref broker,
                ref queue,
                persistent,
            }) => bare::serve_lapin_gateway(listen, broker, queue, persistent)
                .await
                .map_err(setup),
            Some(Role::BareLapinWorker {
                ref broker,
                ref queue,
            }) => bare::serve_lapin_worker(broker, queue).await.map_err(setup),
            Some(Role::Faults(ref f)) => faults::run(f).await,
            None => benchmark(&args).await,
        }
    })
}

async fn benchmark(args: &Args) -> Result<(), LoadError> {
    let mut results = Vec::new();
    for &scenario in &args.scenarios {
        let mut procs = Procs::default();
        let started = start(scenario, args, &mut procs).await;
        let (addr, path) = match started {
            Ok(x) => x,
            Err(e) => {
                eprintln!("{}: not measured: {e}", scenario.name());
                procs.cleanup(args).await;
                continue;
            }
        };
        let body =
            serde_json::to_vec(&serde_json::json!({"horizon": args.horizon, "level": [80, 95]}))
                .map_err(setup)?;
        for &c in &args.connections {
            let m = measure(scenario, addr, &path, &body, c, args.warmup, args.duration).await;
            eprintln!(
                "{:<40} {:>3} conns: {:>9.0}/s p50 {:>6.2} ms p99 {:>6.2} ms ({} errors)",
                scenario.name(),
                c,
                m.per_second,
                m.p50_ms,
                m.p99_ms,
                m.errors
            );
            results.push(m);
        }
        procs.cleanup(args).await;
    }
    print_table(&results, args);
    Ok(())
}

fn print_table(results: &[Measured], args: &Args) {
    println!(
        "\n{} s per measurement after {} s warm-up, horizon {}, levels 80 and 95, {} workers, {} forecasts, {}\n",
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64(),
        args.horizon,
        args.workers,
        if args.persistent { "persistent" } else { "transient" },
        match args.forecast_batch {
            Some(1) => "one forecast per message".to_string(),
            Some(b) => format!("at most {b} forecasts per message"),
            None => "the gateway's default forecast batching".to_string(),
        }
    );
    println!("| scenario | connections | forecasts/s | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    for m in results {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            m.scenario.name(),
            m.connections,
            m.per_second,
            m.p50_ms,
            m.p99_ms,
            m.errors
        );
    }
    let find = |s: Scenario, c: usize| {
        results
            .iter()
            .find(|m| m.scenario == s && m.connections == c)
            .map(|m| m.per_second)
    };
    println!();
    for &c in &args.connections {
        if let (Some(e), Some(a)) = (find(Scenario::Embedded, c), find(Scenario::BareAxum, c)) {
            println!(
                "- {c} connections: embedded = {:.0}% of bare axum",
                100.0 * e / a
            );
        }
        if let (Some(d), Some(l)) = (find(Scenario::Distributed, c), find(Scenario::BareLapin, c)) {
            println!(
                "- {c} connections: distributed = {:.0}% of bare lapin",
                100.0 * d / l
            );
        }
    }
}

/// Child processes of one scenario; killed on drop.
#[derive(Default)]
struct Procs {
    children: Vec<Child>,
    dir: Option<tempfile::TempDir>,
    namespace: Option<String>,
    queue: Option<String>,
}

impl Procs {
    async fn cleanup(mut self, args: &Args) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
        if let Some(ns) = self.namespace.take() {
            let _ = transport::amqp::delete_topology(&args.broker, &ns).await;
            let _ = store::postgres::PgStore::drop_schema(&args.store, &ns).await;
        }
        if let Some(q) = self.queue.take() {
            bare::delete_queue(&args.broker, &q).await;
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn exe() -> Result<PathBuf, LoadError> {
    std::env::current_exe().map_err(setup)
}

fn spawn(procs: &mut Procs, args: &[&str], env: &[(&str, &str)]) -> Result<(), LoadError> {
    let mut cmd = Command::new(exe()?);
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    procs.children.push(cmd.spawn().map_err(setup)?);
    Ok(())
}

fn free_addr() -> Result<SocketAddr, LoadError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(setup)
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), LoadError> {
    let mut conn = HttpConn::connect(addr).await.map_err(setup)?;
    conn.request(method, path, body).await.map_err(setup)
}

/// Waits until `GET path` answers 200.
async fn wait_up(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Result<(), LoadError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = request(addr, method, path, body).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LoadError::Setup(format!(
                "{addr}{path} not ready within 60s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts a scenario's processes and fits its model; returns where to send
/// forecasts.
async fn start(
    scenario: Scenario,
    args: &Args,
    procs: &mut Procs,
) -> Result<(SocketAddr, String), LoadError> {
    let addr = free_addr()?;
    let listen = addr.to_string();
    let probe = serde_json::to_vec(&serde_json::json!({"horizon": 1})).map_err(setup)?;
    match scenario {
        Scenario::BareAxum => {
            spawn(procs, &["loadtest", "bare-axum", "--listen", &listen], &[])?;
            wait_up(addr, "POST", "/forecast", &probe).await?;
            Ok((addr, "/forecast".into()))
        }
        Scenario::BareLapin => {
            let queue = format!("loadtest_bare_{}", std::process::id());
            procs.queue = Some(queue.clone());
            let mut gw = vec![
                "loadtest",
                "bare-lapin-gateway",
                "--listen",
                &listen,
                "--broker",
                &args.broker,
                "--queue",
                &queue,
            ];
            if args.persistent {
                gw.push("--persistent");
            }
            spawn(procs, &gw, &[])?;
            for _ in 0..args.workers {
                spawn(
                    procs,
                    &[
                        "loadtest",
                        "bare-lapin-worker",
                        "--broker",
                        &args.broker,
                        "--queue",
                        &queue,
                    ],
                    &[],
                )?;
            }
            wait_up(addr, "POST", "/forecast", &probe).await?;
            Ok((addr, "/forecast".into()))
        }
        Scenario::Embedded | Scenario::Distributed => {
            let mut env: Vec<(&str, String)> = Vec::new();
            if scenario == Scenario::Embedded {
                let dir = tempfile::tempdir().map_err(setup)?;
                env.push(("HORIZON_DATA_DIR", dir.path().display().to_string()));
                procs.dir = Some(dir);
            } else {
                let ns = format!("loadtest_{}", std::process::id());
                procs.namespace = Some(ns.clone());
                env.push(("HORIZON_BROKER", args.broker.clone()));
                env.push(("HORIZON_STORE", args.store.clone()));
                env.push(("HORIZON_NAMESPACE", ns));
                if args.persistent {
                    env.push(("HORIZON_PERSISTENT_FORECASTS", "true".into()));
                }
                if let Some(b) = args.forecast_batch {
                    env.push(("HORIZON_FORECAST_BATCH", b.to_string()));
                }
            }
            let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            spawn(procs, &["serve", "--listen", &listen], &env_ref)?;
            if scenario == Scenario::Distributed {
                for _ in 0..args.workers {
                    spawn(procs, &["worker"], &env_ref)?;
                }
            }
            wait_up(addr, "GET", "/readyz", b"").await?;
            // A model with a year of monthly history, fitted once: forecasts
            // then come from the workers' caches.
            let values: Vec<f64> = (0..48)
                .map(|t| {
                    100.0 + t as f64 + 10.0 * ((t % 12) as f64 / 12.0 * std::f64::consts::TAU).sin()
                })
                .collect();
            let fit = serde_json::to_vec(&serde_json::json!({
                "series": [{"id": "a", "values": values}],
                "season_length": 12,
            }))
            .map_err(setup)?;
            let (status, body) = request(addr, "PUT", "/v1/models/lt", &fit).await?;
            if status != 200 {
                return Err(LoadError::Setup(format!(
                    "fit failed: {status} {}",
                    String::from_utf8_lossy(&body)
                )));
            }
            Ok((addr, "/v1/models/lt/forecast".into()))
        }
    }
}

async fn measure(
    scenario: Scenario,
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Measured {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (path, body) = (path.to_string(), body.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::new();
            let mut errors = 0usize;
            let mut conn = None;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                if conn.is_none() {
                    match HttpConn::connect(addr).await {
                        Ok(c) => conn = Some(c),
                        Err(_) => {
                            errors += usize::from(now >= start);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                let t0 = Instant::now();
                let r = c.request("POST", &path, &body).await;
                let took = t0.elapsed();
                let counted = t0 >= start && t0 < end;
                match r {
                    Ok((200, _)) => {
                        if counted {
                            latencies.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                        }
                    }
                    Ok(_) => errors += usize::from(counted),
                    Err(_) => {
                        errors += usize::from(counted);
                        conn = None;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        f64::from(all[i.min(all.len() - 1)]) / 1000.0
    };
    Measured {
        scenario,
        connections,
        requests: all.len(),
        errors,
        per_second: all.len() as f64 / duration.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}
