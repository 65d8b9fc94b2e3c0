//! Measures how large request bodies affect the gateway's other requests:
//! `/healthz` latency while `--clients` clients keep posting `--mb` MB fit
//! bodies (a compact fit whose `sizes` do not match `y`, so each body is
//! parsed in full and then refused without any model work).
//!
//! ```sh
//! cargo run --release -p gateway --example healthz_large_bodies -- --clients 2 --mb 30 --seconds 20
//! ```
//!
//! The gateway runs on its own multi-threaded runtime (`--server-threads`,
//! default 2), the clients and the prober on another, as separate processes
//! would.

use async_trait::async_trait;
use gateway::{AppState, GatewayConfig, Shutdown};
use protocol::{FitJob, FitReply, ForecastJob, ForecastReply, JobError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::SqliteStore;
use transport::{InProcessTransport, JobHandler};

/// Never reached: every body is refused before a job is made.
struct NoWorker;

#[async_trait]
impl JobHandler for NoWorker {
    async fn fit(&self, _: FitJob) -> FitReply {
        Err(JobError::Failed("no worker in this benchmark".into()))
    }
    async fn forecast(&self, _: ForecastJob) -> ForecastReply {
        Err(JobError::Failed("no worker in this benchmark".into()))
    }
}

struct Args {
    clients: usize,
    mb: usize,
    seconds: u64,
    server_threads: usize,
}

fn args() -> Args {
    let mut out = Args {
        clients: 2,
        mb: 30,
        seconds: 20,
        server_threads: 2,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse::<u64>().ok());
        match (pair[0].as_str(), value) {
            ("--clients", Some(v)) => out.clients = v as usize,
            ("--mb", Some(v)) => out.mb = v as usize,
            ("--seconds", Some(v)) => out.seconds = v,
            ("--server-threads", Some(v)) => out.server_threads = v as usize,
            _ => {
                eprintln!("usage: healthz_large_bodies [--clients N] [--mb N] [--seconds N] [--server-threads N]");
                std::process::exit(2);
            }
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads.max(1))
        .enable_all()
        .build()
        .expect("server runtime");
    let shutdown = Shutdown::new();
    let base = server_rt.block_on(async {
        let store = Arc::new(SqliteStore::open(dir.path()).await.expect("store"));
        let transport = Arc::new(InProcessTransport::new(Arc::new(NoWorker), 1, 1));
        let state = AppState::new(store, transport, GatewayConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(gateway::serve(listener, state, shutdown.clone()));
        base
    });

    // A compact fit body of about `mb` MB whose sizes do not add up.
    let target = args.mb * 1024 * 1024;
    let mut body = String::with_capacity(target + 64);
    body.push_str("{\"sizes\": [1], \"y\": [");
    let mut i = 0u64;
    while body.len() < target {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("{}.{:03}", 100 + i % 900, i % 1000));
        i += 1;
    }
    body.push_str("]}");
    let body = bytes_of(body);

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let (healthz, posts) = client_rt.block_on(async {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let mut posters = Vec::new();
        for _ in 0..args.clients {
            let (client, base, body) = (client.clone(), base.clone(), body.clone());
            posters.push(tokio::spawn(async move {
                let mut times = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let answer = client
                        .put(format!("{base}/v1/models/big"))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    match answer {
                        Ok(r) if r.status() == 400 => {
                            let _ = r.bytes().await;
                            times.push(started.elapsed().as_secs_f64());
                        }
                        Ok(r) => panic!("expected a 400, got {}", r.status()),
                        Err(e) => panic!("post failed: {e}"),
                    }
                }
                times
            }));
        }
        // Let the first bodies arrive before probing.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut healthz = Vec::new();
        while Instant::now() < deadline {
            let started = Instant::now();
            let r = client
                .get(format!("{base}/healthz"))
                .send()
                .await
                .expect("healthz");
            assert!(r.status().is_success());
            let _ = r.bytes().await;
            healthz.push(started.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut posts = Vec::new();
        for p in posters {
            posts.extend(p.await.expect("poster"));
        }
        (healthz, posts)
    });
    shutdown.trigger();

    let mut healthz = healthz;
    healthz.sort_by(f64::total_cmp);
    let mean_post = posts.iter().sum::<f64>() / posts.len().max(1) as f64;
    println!(
        "{} clients x {} MB bodies, {} s, server threads {}: {} bodies refused (mean {:.2} s each)",
        args.clients,
        args.mb,
        args.seconds,
        args.server_threads,
        posts.len(),
        mean_post
    );
    println!(
        "/healthz over {} probes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        healthz.len(),
        percentile(&healthz, 0.50),
        percentile(&healthz, 0.99),
        healthz.last().copied().unwrap_or(f64::NAN)
    );
}

/// Clones of it share the bytes, so every post sends the same buffer.
fn bytes_of(s: String) -> axum::body::Bytes {
    axum::body::Bytes::from(s.into_bytes())
}
