//! Stores a large sharded model directly, for benchmarks of the forecast
//! path (`scripts/bench_shards.py --seed`): one fit job of `--series`
//! series is split into shards exactly as the gateway splits it
//! (`protocol::shard::split`) and each shard is fitted and stored by a
//! [`worker::Worker`], as a worker does with a shard from the queue. Only the
//! HTTP upload is skipped: one fit request takes at most 100,000 series.
//!
//! usage: seed_sharded (--data-dir DIR | --store URL --namespace NS)
//!        [--model big] [--series 1000000] [--points 5] [--method naive]
//!        [--shard-series 5000] [--undated]

use anyhow::{bail, Context};
use clap::Parser;
use engine::{Method, ModelSpec, SeriesData};
use protocol::calendar::{Freq, SeriesCalendar, Timestamp};
use protocol::shard::{split, ShardSizes};
use protocol::{FitJob, ModelName, NamedSeries};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::postgres::{PgConfig, PgStore};
use store::{ModelStore, SqliteStore, VersionStatus};
use transport::JobHandler;

#[derive(Parser)]
struct Args {
    /// The embedded store's directory (`horizon serve --data-dir`).
    #[arg(long, conflicts_with = "store")]
    data_dir: Option<PathBuf>,
    /// The PostgreSQL registry of a distributed deployment.
    #[arg(long, requires = "namespace")]
    store: Option<String>,
    /// Its schema (`HORIZON_NAMESPACE`).
    #[arg(long)]
    namespace: Option<String>,
    #[arg(long, default_value = "big")]
    model: String,
    #[arg(long, default_value_t = 1_000_000)]
    series: usize,
    /// Values per series.
    #[arg(long, default_value_t = 5)]
    points: usize,
    #[arg(long, default_value = "naive")]
    method: String,
    #[arg(long, default_value_t = protocol::shard::DEFAULT_SHARD_SERIES)]
    shard_series: usize,
    /// Series without timestamps (by default each is daily, ending on its
    /// own day, so forecasts carry `ds`).
    #[arg(long)]
    undated: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store: Arc<dyn ModelStore> = match (&args.data_dir, &args.store, &args.namespace) {
        (Some(dir), None, _) => Arc::new(SqliteStore::open(dir).await?),
        (None, Some(url), Some(ns)) => Arc::new(PgStore::connect(&PgConfig::new(url, ns)).await?),
        _ => bail!("give --data-dir, or --store and --namespace"),
    };
    let model = ModelName::parse(&args.model).context("--model")?;
    let method: Method = args
        .method
        .parse()
        .map_err(|e| anyhow::anyhow!("--method: {e}"))?;
    let daily = Freq::parse("D")?;
    let first = Timestamp::parse("2024-01-01")?;
    let started = Instant::now();
    let series = (0..args.series)
        .map(|i| {
            let level = 50.0 + (i % 100) as f64;
            let values: Vec<f64> = (0..args.points)
                .map(|t| level + ((i + t) % 7) as f64)
                .collect();
            // The last day of series i: 2024-01-01 + (i % 1000) days.
            let calendar = match args.undated {
                true => None,
                false => Some(SeriesCalendar {
                    freq: daily,
                    last: first.step(&daily, (i % 1000) as i64).context("a date")?,
                }),
            };
            Ok(NamedSeries {
                id: format!("s{i}"),
                values: SeriesData::parse(values).map_err(|e| anyhow::anyhow!("{e}"))?,
                calendar,
                index: None,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let version = store
        .register_pending(&model, args.series, None)
        .await?
        .version();
    let job = FitJob {
        model: model.clone(),
        version,
        spec: ModelSpec::new(method, None),
        series,
        base: None,
        shard: None,
    };
    let sizes = ShardSizes {
        series: args.shard_series,
        ..ShardSizes::default()
    };
    let shards = split(job, &sizes);
    let count = shards.len();
    // A worker that keeps nothing: the benchmark's workers read the store.
    let worker = Worker::new(store.clone());
    for (i, shard) in shards.into_iter().enumerate() {
        worker
            .0
            .fit(shard)
            .await
            .map_err(|e| anyhow::anyhow!("shard {i}: {e}"))?;
    }
    let info = store
        .wait_status(&model, version, Duration::from_secs(5))
        .await?;
    if info.status != VersionStatus::Ready {
        bail!("version {version} is {:?}", info.status);
    }
    println!(
        "{{\"model\": \"{}\", \"version\": {version}, \"series\": {}, \"shards\": {count}, \"seconds\": {:.1}}}",
        args.model,
        args.series,
        started.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok(())
}

/// The real worker, with no cache (nothing kept).
struct Worker(worker::Worker);

impl Worker {
    fn new(store: Arc<dyn ModelStore>) -> Self {
        Self(worker::Worker::with_cache_mib(store, 0))
    }
}
