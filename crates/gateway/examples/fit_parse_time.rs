//! Times the gateway's reading of small and medium fit bodies end to end
//! over HTTP (loopback, one request at a time): `--kb` KiB compact fits
//! (`{"sizes", "y", "method"}`) whose unknown method is only found once the
//! whole body is parsed, so each is read in full and refused 400 without
//! any model work. For before/after comparisons of the body parser.
//!
//! ```sh
//! cargo run --release -p gateway --example fit_parse_time -- --kb 1 --requests 2000
//! cargo run --release -p gateway --example fit_parse_time -- --kb 1024 --requests 100
//! ```

use async_trait::async_trait;
use gateway::{AppState, GatewayConfig, Shutdown};
use protocol::{FitJob, FitReply, ForecastJob, ForecastReply, JobError};
use std::sync::Arc;
use std::time::Instant;
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

fn args() -> (usize, usize) {
    let (mut kb, mut requests) = (1, 1000);
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse::<usize>().ok());
        match (pair[0].as_str(), value) {
            ("--kb", Some(v)) => kb = v,
            ("--requests", Some(v)) => requests = v,
            _ => {
                eprintln!("usage: fit_parse_time [--kb N] [--requests N]");
                std::process::exit(2);
            }
        }
    }
    (kb, requests)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn main() {
    let (kb, requests) = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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

    // Values such as 123.456 (8 bytes with the comma), series of 1000.
    let n = (kb * 1024 / 8).max(3);
    let y: Vec<String> = (0..n)
        .map(|i| format!("{}.{:03}", 100 + i % 900, i % 1000))
        .collect();
    let sizes: Vec<String> = (0..n)
        .step_by(1000)
        .map(|start| (n - start).min(1000).to_string())
        .collect();
    let body = format!(
        r#"{{"sizes": [{}], "y": [{}], "method": "no such method"}}"#,
        sizes.join(","),
        y.join(",")
    );
    let size = body.len();
    let body = axum::body::Bytes::from(body.into_bytes());

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let mut times = client_rt.block_on(async {
        let client = reqwest::Client::new();
        let mut times = Vec::with_capacity(requests);
        for i in 0..requests + requests / 10 {
            let started = Instant::now();
            let r = client
                .put(format!("{base}/v1/models/m"))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("put");
            assert_eq!(r.status(), 400, "the body must be refused");
            let answer = r.text().await.expect("answer");
            assert!(answer.contains("unknown method"), "{answer}");
            // The first tenth warms up.
            if i >= requests / 10 {
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        times
    });
    shutdown.trigger();
    times.sort_by(f64::total_cmp);
    println!(
        "{requests} requests of a {size}-byte fit body ({n} values): p50 {:.3} ms, p90 {:.3} ms, mean {:.3} ms",
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        times.iter().sum::<f64>() / times.len().max(1) as f64
    );
}
