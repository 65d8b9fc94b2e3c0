//! Measurements of the worker's reliability figures (issue 13), recorded in
//! RELIABILITY.md:
//!
//! - `cold`: peak memory of 64 concurrent forecasts of a 100,000-series model
//!   on a worker that has not loaded it yet;
//! - `cache`: fitting a 10,000-series model into a cache (24 MiB) full of
//!   one-series models (40,000 fitted into it): how long the fit takes and
//!   how long forecasts of a cached model wait meanwhile;
//! - `runtime`: how late a trivial task (what `/healthz` is) runs on the
//!   async threads while 8 clients forecast 512 steps of a season-10,000
//!   model.
//!
//! `cargo run --release -p worker --example worker_bench -- cold|cache|runtime [METHOD]`

use engine::{Horizon, Level, Method, ModelSpec, SeriesData};
use protocol::{FitJob, ForecastJob, ModelName, NamedSeries};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{ModelStore, SqliteStore};
use transport::JobHandler;
use worker::Worker;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    // The machine's two cores, like `horizon serve` on it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        match scenario.as_str() {
            "cold" => cold().await,
            "cache" => cache().await,
            "runtime" => runtime().await,
            other => {
                Err(format!("unknown scenario '{other}'; expected cold, cache or runtime").into())
            }
        }
    })
}

async fn open() -> Result<(tempfile::TempDir, Arc<dyn ModelStore>), Error> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn ModelStore> = Arc::new(SqliteStore::open(dir.path()).await?);
    Ok((dir, store))
}

/// Fits `series` as a new version of `model`.
async fn fit(
    worker: &Worker,
    store: &Arc<dyn ModelStore>,
    model: &ModelName,
    spec: ModelSpec,
    series: Vec<NamedSeries>,
) -> Result<i64, Error> {
    let version = store
        .register_pending(model, series.len(), None)
        .await?
        .version();
    worker
        .fit(FitJob {
            shard: None,
            base: None,
            model: model.clone(),
            version,
            spec,
            series,
        })
        .await?;
    Ok(version)
}

fn named(id: String, values: Vec<f64>) -> Result<NamedSeries, Error> {
    Ok(NamedSeries {
        id,
        values: SeriesData::parse(values)?,
        calendar: None,
        index: None,
    })
}

fn forecast_job(
    model: &ModelName,
    version: i64,
    steps: i64,
    ids: Option<Vec<String>>,
) -> Result<ForecastJob, Error> {
    Ok(ForecastJob {
        model: model.clone(),
        version,
        horizon: Horizon::parse(steps)?,
        levels: vec![Level::parse(80.0)?, Level::parse(95.0)?],
        series_ids: ids,
        shard: None,
    })
}

/// A line of /proc/self/status, in MB.
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn cold() -> Result<(), Error> {
    let (_dir, store) = open().await?;
    let model = ModelName::parse("wide")?;
    let n = 100_000;
    let series = (0..n)
        .map(|i| {
            named(
                format!("s{i}"),
                (0..24).map(|t| (t * (i % 7 + 1)) as f64).collect(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let version = {
        let fitter = Worker::new(store.clone());
        fit(
            &fitter,
            &store,
            &model,
            ModelSpec::new(Method::Naive, None),
            series,
        )
        .await?
    };
    // Forget the fit's peak: only the forecasts count.
    std::fs::write("/proc/self/clear_refs", "5")?;
    let before = status_mb("VmRSS:");
    let fresh = Arc::new(Worker::new(store.clone()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (fresh, job) = (
                fresh.clone(),
                forecast_job(&model, version, 12, Some(vec![format!("s{i}")])),
            );
            tokio::spawn(async move { fresh.forecast(job?).await.map_err(Error::from) })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    println!(
        "64 concurrent cold forecasts of a {n}-series model: RSS before {before:.0} MB, peak {:.0} MB, {:.2} s, model decoded {} time(s)",
        status_mb("VmHWM:"),
        started.elapsed().as_secs_f64(),
        fresh.decodes()
    );
    Ok(())
}

fn naive() -> ModelSpec {
    ModelSpec::new(Method::Naive, None)
}

async fn cache() -> Result<(), Error> {
    let (_dir, store) = open().await?;
    let small = 40_000;
    // Less than these one-series models weigh (about 1 KiB each): the cache
    // is full, and evicts them when the large model goes in.
    let worker = Arc::new(Worker::with_cache_mib(store.clone(), 24));
    let started = Instant::now();
    let fits: Vec<_> = (0..8)
        .map(|k| {
            let (worker, store) = (worker.clone(), store.clone());
            tokio::spawn(async move {
                for i in (k..small).step_by(8) {
                    let model = ModelName::parse(&format!("one{i}"))?;
                    let s = named("a".into(), vec![1.0, 2.0, i as f64])?;
                    fit(&worker, &store, &model, naive(), vec![s]).await?;
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    for f in fits {
        f.await??;
    }
    println!(
        "{small} one-series models fitted into the cache in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Forecasts of the most recently cached model, one after another, while
    // the large model goes in.
    let hot = ModelName::parse(&format!("one{}", small - 1))?;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let (worker, stop, hot) = (worker.clone(), stop.clone(), hot.clone());
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                worker.forecast(forecast_job(&hot, 1, 1, None)?).await?;
                slowest = slowest.max(t.elapsed());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok::<_, Error>(slowest)
        })
    };
    let big = ModelName::parse("big")?;
    let series = (0..10_000)
        .map(|i| named(format!("s{i}"), vec![1.0, 2.0, i as f64]))
        .collect::<Result<Vec<_>, _>>()?;
    let t = Instant::now();
    fit(&worker, &store, &big, naive(), series).await?;
    let took = t.elapsed();
    stop.store(true, Ordering::SeqCst);
    let slowest = probe.await??;
    println!(
        "fit of a 10,000-series model into a full cache of {small} one-series models: {:.3} s; slowest forecast of a cached model meanwhile: {:.1} ms",
        took.as_secs_f64(),
        slowest.as_secs_f64() * 1e3
    );
    Ok(())
}

async fn runtime() -> Result<(), Error> {
    let (_dir, store) = open().await?;
    let worker = Arc::new(Worker::new(store.clone()));
    let model = ModelName::parse("seasonal")?;
    let season = 10_000;
    let values: Vec<f64> = (0..2 * season + 100)
        .map(|t| 100.0 + ((t % season) as f64).sqrt() + (t % 7) as f64)
        .collect();
    let t = Instant::now();
    // The method as the second argument (default `auto`).
    let method: Method = std::env::args()
        .nth(2)
        .map_or(Ok(Method::Auto), |m| m.parse())?;
    let spec = ModelSpec::new(method, Some(season));
    let version = fit(
        &worker,
        &store,
        &model,
        spec,
        vec![named("a".into(), values)?],
    )
    .await?;
    println!(
        "fitted the season-{season} model in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (worker, stop, model) = (worker.clone(), stop.clone(), model.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    // Means only: 512 values, which the old cost model ran inline.
                    let job = ForecastJob {
                        levels: vec![],
                        ..forecast_job(&model, version, 512, None)?
                    };
                    worker.forecast(job).await?;
                    n += 1;
                    // A client's next request comes over the network: the
                    // task yields between requests like a connection does.
                    tokio::task::yield_now().await;
                }
                Ok::<_, Error>(n)
            })
        })
        .collect();
    // The probe: a trivial task, as `/healthz` is, every millisecond.
    let mut lags = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let t = Instant::now();
        tokio::spawn(async {}).await?;
        lags.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut forecasts = 0;
    for c in clients {
        forecasts += c.await??;
    }
    lags.sort_unstable();
    let pct = |p: f64| lags[((lags.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "8 clients forecasting 512 steps of a season-{season} model: {forecasts} forecasts in 10 s; a trivial task on the runtime waited p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} probes)",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        lags.len()
    );
    Ok(())
}
