//! The worker: takes fit and forecast jobs, runs the engine, keeps fitted
//! models in the store and answers.
//!
//! Engine work never runs on the async threads: fits go to `spawn_blocking`
//! and fit the series of a job in parallel on rayon's pool (where the engine
//! also spreads the pieces of one long fit); every forecast,
//! however small, runs on a blocking thread without rayon, so it never waits
//! behind fits and never stalls the runtime (a "cheap" forecast is not cheap
//! when its model has a season of 10,000).
//!
//! A model version missing from the cache is read and decoded once however
//! many forecasts ask for it at the same time: the first one loads it, the
//! others wait for that load and share its result.
//!
//! A shard of a sharded fit (see `protocol::shard`) is fitted like a whole
//! fit and stored as one shard of its version; a forecast of some series
//! reads and caches only the shards that hold them.
//!
//! A store that is unavailable is not a verdict: saving a finished fit is
//! retried (see [`retry`]) and never turns into a failed version.

mod cache;
mod heap;
mod progress;
mod redelivery;
mod retry;
mod state;

pub use redelivery::{Redeliverable, HEARTBEAT};
pub use retry::STORE_RETRY_FOR;

use async_trait::async_trait;
use cache::ModelCache;
use engine::backtest::{self, BacktestOptions};
use engine::{Forecast, Horizon, Level, ModelSpec, SeriesData};
use protocol::calendar::{label_after, IndexAxis, SeriesCalendar};
use protocol::{
    BacktestJob, BacktestReply, BacktestResult, BacktestWindow, FitJob, FitReply, FitSummary,
    ForecastJob, ForecastReply, ForecastResult, JobError, ModelName, NamedSeries,
    SeriesBacktestResult, SeriesFit, SeriesForecast, Version,
};
use rayon::prelude::*;
use state::LoadedModel;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{ModelStore, StoreError};
use tokio::sync::OnceCell;
use transport::JobHandler;

/// Default size of the model cache, in MiB of decoded models (as
/// `LoadedModel::heap_bytes` estimates them). 512 MiB keeps a worker under
/// 1 GiB on the largest fit of issue 12 (1,000,000 ETS series of 60
/// points): the cache (about 300,000 such series), plus the shard being
/// fitted, plus the allocator's slack; 256 MiB made two workers serving
/// a 100,000-series ETS model decode shards again and again (BENCHMARKS.md,
/// "Sharded fits"). A cache in series could not promise a bound: an ETS
/// series weighs several times a naive one.
pub const DEFAULT_CACHE_MIB: usize = 512;

/// Shard counts of versions remembered (a count never changes once the
/// version is ready).
const SHARD_COUNTS: usize = 4096;

/// The outcome of one load of a model version, shared by all its waiters.
type SharedLoad = Arc<OnceCell<Result<Arc<LoadedModel>, JobError>>>;

/// Runs jobs against a store.
pub struct Worker {
    store: Arc<dyn ModelStore>,
    cache: ModelCache,
    /// Loads under way, by (model, version, shard): one per key at a time.
    loading: Mutex<HashMap<(ModelName, Version, u32), SharedLoad>>,
    /// How many shards each ready version read so far is stored in.
    shard_counts: Mutex<lru::LruCache<(ModelName, Version), u32>>,
    /// Model versions decoded from the store so far.
    decodes: AtomicU64,
    /// How long a save waits out an unavailable store.
    store_retry: Duration,
}

impl Worker {
    /// A worker whose cache keeps up to [`DEFAULT_CACHE_MIB`] MiB of models.
    pub fn new(store: Arc<dyn ModelStore>) -> Self {
        Self::with_cache_mib(store, DEFAULT_CACHE_MIB)
    }

    /// A worker whose cache keeps up to `cache_mib` MiB of decoded models
    /// (0: none kept).
    pub fn with_cache_mib(store: Arc<dyn ModelStore>, cache_mib: usize) -> Self {
        Self {
            store,
            cache: ModelCache::new(cache_mib.saturating_mul(1 << 20)),
            loading: Mutex::new(HashMap::new()),
            shard_counts: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(SHARD_COUNTS).expect("non-zero"),
            )),
            decodes: AtomicU64::new(0),
            store_retry: STORE_RETRY_FOR,
        }
    }

    /// Waits out an unavailable store for `retry_for` instead of
    /// [`STORE_RETRY_FOR`] before answering [`JobError::Unavailable`].
    pub fn store_retry_for(mut self, retry_for: Duration) -> Self {
        self.store_retry = retry_for;
        self
    }

    /// How many model versions this worker has decoded from the store.
    pub fn decodes(&self) -> u64 {
        self.decodes.load(Ordering::Relaxed)
    }

    /// How many shards a ready version is stored in (1: stored whole).
    async fn shard_count(&self, model: &ModelName, version: Version) -> Result<u32, JobError> {
        let key = (model.clone(), version);
        if let Some(n) = lock(&self.shard_counts).get(&key) {
            return Ok(*n);
        }
        let n = self
            .store
            .shard_count(model, version)
            .await
            .map_err(|e| load_error(model, version, e))?;
        lock(&self.shard_counts).put(key, n);
        Ok(n)
    }

    /// Every series of a ready version as one model: its only shard, or
    /// its shards merged.
    async fn load(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<Arc<LoadedModel>, JobError> {
        let count = self.shard_count(model, version).await?;
        if count <= 1 {
            return self.load_shard(model, version, 0).await;
        }
        let parts = futures_util::future::try_join_all(
            (0..count).map(|shard| self.load_shard(model, version, shard)),
        )
        .await?;
        Ok(Arc::new(
            tokio::task::spawn_blocking(move || LoadedModel::merge(&parts))
                .await
                .map_err(|_| JobError::Failed("merging the shards of a model panicked".into()))?,
        ))
    }

    /// One shard of a ready version (shard 0 of a version stored whole),
    /// from the cache or the store; concurrent callers for the same shard
    /// share one load.
    async fn load_shard(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
    ) -> Result<Arc<LoadedModel>, JobError> {
        if let Some(hit) = self.cache.get(model, version, shard) {
            metrics::counter!("horizon_cache_hits_total").increment(1);
            return Ok(hit);
        }
        metrics::counter!("horizon_cache_misses_total").increment(1);
        let key = (model.clone(), version, shard);
        let cell = lock(&self.loading).entry(key.clone()).or_default().clone();
        let result = cell
            .get_or_init(|| self.load_from_store(model, version, shard))
            .await
            .clone();
        // The load is over: later callers find the model in the cache (or,
        // after an error, try again) rather than this outcome.
        let mut loading = lock(&self.loading);
        if loading.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            loading.remove(&key);
        }
        result
    }

    async fn load_from_store(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
    ) -> Result<Arc<LoadedModel>, JobError> {
        let loaded = self.read_shard(model, version, shard).await?;
        self.cache.insert(model, version, shard, loaded.clone());
        Ok(loaded)
    }

    /// One shard read and decoded from the store, not cached.
    async fn read_shard(
        &self,
        model: &ModelName,
        version: Version,
        shard: u32,
    ) -> Result<Arc<LoadedModel>, JobError> {
        let bytes = self
            .store
            .load_shard(model, version, shard)
            .await
            .map_err(|e| load_error(model, version, e))?;
        self.decodes.fetch_add(1, Ordering::Relaxed);
        let loaded = tokio::task::spawn_blocking(move || LoadedModel::decode(&bytes))
            .await
            .map_err(|_| JobError::Failed("decoding a stored model panicked".into()))?
            .map_err(|e| state_error(model, version, e))?;
        Ok(Arc::new(loaded))
    }

    /// Forecasts the series `ids` (all when `None`) of a sharded version:
    /// each shard that holds some of them is loaded and forecast on its own.
    async fn forecast_shards(
        &self,
        job: &ForecastJob,
        count: u32,
    ) -> Result<Vec<SeriesForecast>, JobError> {
        let (model, version) = (&job.model, job.version);
        // Which series of which shard, in the order asked.
        let mut wanted: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
        if let Some(ids) = &job.series_ids {
            for id in ids {
                wanted
                    .entry(protocol::shard::shard_of(id, count))
                    .or_default()
                    .push(id.clone());
            }
        }
        let shards: Vec<u32> = match &job.series_ids {
            Some(_) => wanted.keys().copied().collect(),
            None => (0..count).collect(),
        };
        let loaded = futures_util::future::try_join_all(
            shards
                .iter()
                .map(|&shard| self.load_shard(model, version, shard)),
        )
        .await?;
        let (horizon, levels, all) = (job.horizon, job.levels.clone(), job.series_ids.is_none());
        let parts: Vec<(Arc<LoadedModel>, Option<Vec<String>>)> = loaded
            .into_iter()
            .zip(&shards)
            .map(|(l, s)| (l, (!all).then(|| wanted.remove(s).unwrap_or_default())))
            .collect();
        let mut forecasts = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut unknown = Vec::new();
            for (loaded, ids) in &parts {
                if let Some(ids) = ids {
                    unknown.extend(
                        ids.iter()
                            .filter(|id| loaded.position(id).is_none())
                            .cloned(),
                    );
                }
            }
            if !unknown.is_empty() {
                return Err(unknown_ids(&unknown));
            }
            for (loaded, ids) in &parts {
                out.extend(forecast_all(loaded, horizon, &levels, ids.as_deref())?);
            }
            Ok(out)
        })
        .await
        .map_err(|_| JobError::Failed("the engine crashed while forecasting".into()))??;
        // The answer lists the series in the order asked.
        if let Some(ids) = &job.series_ids {
            let at: HashMap<&str, usize> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect();
            forecasts.sort_by_key(|f| at.get(f.id.as_str()).copied().unwrap_or(usize::MAX));
        }
        Ok(forecasts)
    }

    /// Forecasts every series of one shard (a version stored whole is its
    /// own shard 0), in stored order: a part of a whole download.
    async fn forecast_one_shard(&self, job: ForecastJob, shard: u32, count: u32) -> ForecastReply {
        if shard >= count || job.series_ids.is_some() {
            return Err(JobError::Invalid(format!(
                "shard {shard} of version {} of model '{}' (stored in {count}) cannot be forecast{}",
                job.version,
                job.model,
                if job.series_ids.is_some() {
                    " with a list of series"
                } else {
                    ""
                }
            )));
        }
        // A download passes over every shard once: read through the cache,
        // not into it, so that it neither grows the worker by the whole
        // model nor evicts the shards that forecasts of a few series use.
        let loaded = match self.cache.get(&job.model, job.version, shard) {
            Some(hit) => hit,
            None => self.read_shard(&job.model, job.version, shard).await?,
        };
        let (horizon, levels) = (job.horizon, job.levels);
        let series =
            tokio::task::spawn_blocking(move || forecast_all(&loaded, horizon, &levels, None))
                .await
                .map_err(|_| JobError::Failed("the engine crashed while forecasting".into()))??;
        Ok(ForecastResult {
            model: job.model,
            version: job.version,
            series,
        })
    }

    async fn fail_version(&self, model: &ModelName, version: Version, reason: String) -> JobError {
        tracing::warn!(%model, version, %reason, "fit failed");
        store::record_failure(self.store.as_ref(), model, version, &reason).await;
        JobError::Failed(reason)
    }
}

/// A gauge raised while this lives (a fit or forecast running here).
struct InFlight(&'static str);

impl InFlight {
    fn new(gauge: &'static str) -> Self {
        metrics::gauge!(gauge).increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl JobHandler for Worker {
    async fn fit(&self, job: FitJob) -> FitReply {
        let FitJob {
            model,
            version,
            spec,
            series,
            base,
            shard,
        } = job;
        // A shard's failure fails its whole version, and says which shard.
        let tag = |reason: String| match shard {
            Some(s) => format!("{s}: {reason}"),
            None => reason,
        };
        let started = Instant::now();
        let n_series = series.len();
        let method = spec.method;
        let _fitting = InFlight::new("horizon_worker_fits_running");
        metrics::histogram!("horizon_fit_series").record(n_series as f64);
        let (loaded, bytes, inputs) = match base {
            Some(base) => {
                let old = match self.load(&model, base).await {
                    Ok(old) => old,
                    Err(e) => {
                        let reason = format!("version {base} could not be read: {e}");
                        return Err(self.fail_version(&model, version, reason).await);
                    }
                };
                let observed =
                    tokio::task::spawn_blocking(move || observe_all(&old, base, series)).await;
                match observed {
                    Ok(Ok(done)) => done,
                    Ok(Err(JobError::Invalid(reason))) => {
                        self.fail_version(&model, version, reason.clone()).await;
                        return Err(JobError::Invalid(reason));
                    }
                    Ok(Err(e)) => {
                        return Err(self.fail_version(&model, version, e.to_string()).await)
                    }
                    Err(_) => {
                        let reason = "the engine crashed while filtering forward".to_string();
                        return Err(self.fail_version(&model, version, reason).await);
                    }
                }
            }
            None => {
                // What the summary reports of each series' input, in fit order.
                let inputs: Vec<_> = series
                    .iter()
                    .map(|s| (s.values.n_missing(), s.calendar, s.index))
                    .collect();
                let progress = Arc::new(progress::Progress::default());
                let subject = match shard {
                    Some(_) => progress::Subject::Shard {
                        model: model.clone(),
                        version,
                    },
                    None => progress::Subject::Fit {
                        model: model.clone(),
                        version,
                    },
                };
                let reporter = progress::report(
                    self.store.clone(),
                    subject,
                    n_series as u64,
                    progress.clone(),
                );
                let fitted = {
                    let progress = progress.clone();
                    tokio::task::spawn_blocking(move || fit_all(spec, series, &progress)).await
                };
                reporter.abort();
                match fitted {
                    Ok(Ok((loaded, bytes))) => (loaded, bytes, inputs),
                    // A cancelled version is failed already: its reason stays.
                    Ok(Err(reason)) if reason == store::jobs::CANCELLED => {
                        return Err(self.fail_version(&model, version, reason).await)
                    }
                    Ok(Err(reason)) => {
                        return Err(self.fail_version(&model, version, tag(reason)).await)
                    }
                    Err(_) => {
                        let reason = tag("the engine crashed while fitting".to_string());
                        return Err(self.fail_version(&model, version, reason).await);
                    }
                }
            }
        };
        metrics::histogram!("horizon_fit_duration_seconds").record(started.elapsed().as_secs_f64());
        let summary = FitSummary {
            model: model.clone(),
            version,
            method: loaded.spec().map_or(method, |s| s.method),
            series: loaded
                .summary()
                .into_iter()
                .zip(inputs)
                .map(|(fit, (n_missing, calendar, index))| SeriesFit {
                    n_missing,
                    calendar,
                    index,
                    ..fit
                })
                .collect(),
            base,
        };
        // `complete` is idempotent, so a save whose answer was lost with the
        // connection can be sent again.
        let saved = retry::while_unavailable("saving a fit", self.store_retry, || async {
            match shard {
                Some(shard) => {
                    self.store
                        .complete_shard(&model, version, shard, &bytes, &summary)
                        .await
                }
                None => self.store.complete(&model, version, &bytes, &summary).await,
            }
        })
        .await;
        match saved {
            Ok(()) => {}
            Err(StoreError::Unavailable(e)) => {
                // No verdict: the version stays pending for a retry (its
                // heartbeat stops, so it is known as orphaned).
                tracing::warn!(%model, version, "gave up saving a fit: {e}");
                return Err(JobError::Unavailable(format!(
                    "the fit of version {version} of model '{model}' could not be saved: {e}"
                )));
            }
            Err(e) => {
                let reason = tag(format!("saving the fitted model failed: {e}"));
                return Err(self.fail_version(&model, version, reason).await);
            }
        }
        let shard_index = shard.map_or(0, |s| s.index);
        self.cache
            .insert(&model, version, shard_index, Arc::new(loaded));
        tracing::info!(
            %model,
            version,
            n_series,
            base,
            shard = shard.map(|s| s.to_string()),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "fit done"
        );
        Ok(summary)
    }

    async fn backtest(&self, job: BacktestJob) -> BacktestReply {
        let BacktestJob {
            spec,
            series,
            source,
            options,
            job,
        } = job;
        let (spec, series) = match source {
            None => (spec, series),
            Some((model, version)) => {
                let loaded = self.load(&model, version).await?;
                match loaded.spec() {
                    Some(spec) if !loaded.inputs().is_empty() => {
                        (spec.clone(), loaded.inputs().to_vec())
                    }
                    _ => {
                        return Err(JobError::Invalid(format!(
                            "version {version} of model '{model}' was stored before training \
                             data was kept with a model; fit it again to backtest it"
                        )))
                    }
                }
            }
        };
        let progress = Arc::new(progress::Progress::default());
        let reporter = job.map(|id| {
            progress::report(
                self.store.clone(),
                progress::Subject::Job(id),
                series.len() as u64,
                progress.clone(),
            )
        });
        let result =
            tokio::task::spawn_blocking(move || backtest_all(&spec, &series, &options, &progress))
                .await;
        if let Some(reporter) = reporter {
            reporter.abort();
        }
        result.map_err(|_| JobError::Failed("the engine crashed while backtesting".into()))?
    }

    async fn forecast(&self, job: ForecastJob) -> ForecastReply {
        let _forecasting = InFlight::new("horizon_worker_forecasts_running");
        let count = self.shard_count(&job.model, job.version).await?;
        if let Some(shard) = job.shard {
            return self.forecast_one_shard(job, shard, count).await;
        }
        if count > 1 {
            let series = self.forecast_shards(&job, count).await?;
            return Ok(ForecastResult {
                model: job.model,
                version: job.version,
                series,
            });
        }
        let loaded = self.load_shard(&job.model, job.version, 0).await?;
        let ForecastJob {
            model,
            version,
            horizon,
            levels,
            series_ids,
            shard: _,
        } = job;
        let series = tokio::task::spawn_blocking(move || {
            forecast_all(&loaded, horizon, &levels, series_ids.as_deref())
        })
        .await
        .map_err(|_| JobError::Failed("the engine crashed while forecasting".into()))??;
        Ok(ForecastResult {
            model,
            version,
            series,
        })
    }
}

/// What a store error while reading a version means for the job.
fn load_error(model: &ModelName, version: Version, e: StoreError) -> JobError {
    match e {
        StoreError::Unavailable(_) => {
            JobError::Unavailable(format!("loading version {version} of model '{model}': {e}"))
        }
        e => JobError::Failed(format!("loading version {version} of model '{model}': {e}")),
    }
}

/// The client's error for series ids a version does not have.
fn unknown_ids(unknown: &[String]) -> JobError {
    let shown: Vec<String> = unknown
        .iter()
        .take(10)
        .map(|id| format!("'{id}'"))
        .collect();
    let more = if unknown.len() > 10 { ", ..." } else { "" };
    JobError::Invalid(format!(
        "unknown series id{} {}{more}",
        if unknown.len() == 1 { "" } else { "s" },
        shown.join(", ")
    ))
}

/// What a state that cannot be read means for the job. A state written by
/// a newer build is no verdict on the version: this worker answers
/// "unavailable" (a 503 the client may retry, answered by an upgraded worker
/// once the rolling deploy reaches it), never a failure for ever.
fn state_error(model: &ModelName, version: Version, e: state::StateError) -> JobError {
    let message = format!("version {version} of model '{model}': {e}");
    if e.is_newer() {
        JobError::Unavailable(message)
    } else {
        JobError::Failed(message)
    }
}

/// Fits every series (in parallel) and encodes the result, with the spec
/// and the series, for the store. Stops early (with
/// [`store::jobs::CANCELLED`]) once `progress` says the work is no longer
/// wanted.
fn fit_all(
    spec: ModelSpec,
    series: Vec<NamedSeries>,
    progress: &progress::Progress,
) -> Result<(LoadedModel, Vec<u8>), String> {
    let fitted = series
        .par_iter()
        .map(|s| {
            if progress.is_stopped() {
                return Err(store::jobs::CANCELLED.to_string());
            }
            let fitted = match spec.fit(&s.values) {
                Ok(fitted) => Ok((s.id.clone(), fitted)),
                Err(e) => Err(format!("series '{}' could not be fitted: {e}", s.id)),
            };
            progress.series_done();
            fitted
        })
        .collect::<Result<Vec<_>, String>>()?;
    let loaded = LoadedModel::new(fitted).with_inputs(spec, series);
    let bytes = loaded
        .encode()
        .map_err(|e| format!("encoding the fitted model failed: {e}"))?;
    Ok((loaded, bytes))
}

/// What the summary reports of a series' input: missing values and where
/// its time axis ends (calendar or integer positions).
type InputSummary = (usize, Option<SeriesCalendar>, Option<IndexAxis>);

/// New observations: every series of `old` (version `base`) named in `new`
/// gets the new values appended and its state filtered forward with the
/// same parameters; the others are kept. The calendar of a series with
/// timestamps (or integer positions) moves on by the number of new values.
fn observe_all(
    old: &LoadedModel,
    base: Version,
    new: Vec<NamedSeries>,
) -> Result<(LoadedModel, Vec<u8>, Vec<InputSummary>), JobError> {
    let spec = match old.spec() {
        Some(spec) if old.inputs().len() == old.len() => spec.clone(),
        _ => {
            return Err(JobError::Invalid(format!(
                "version {base} was stored before training data was kept with a model; fit it \
                 again to send it observations"
            )))
        }
    };
    let mut additions: HashMap<&str, &NamedSeries> = HashMap::new();
    for s in &new {
        if old.position(&s.id).is_none() {
            return Err(JobError::Invalid(format!(
                "unknown series id '{}': observations extend the series of version {base}",
                s.id
            )));
        }
        if additions.insert(s.id.as_str(), s).is_some() {
            return Err(JobError::Invalid(format!(
                "series id '{}' appears more than once",
                s.id
            )));
        }
    }
    let updated = (0..old.len())
        .into_par_iter()
        .map(|i| {
            let (id, fitted) = old.get(i);
            let input = &old.inputs()[i];
            let Some(add) = additions.get(id) else {
                return Ok(((id.to_string(), fitted.clone()), input.clone()));
            };
            let extended = fitted
                .extend(&input.values, add.values.values())
                .map_err(|e| JobError::Invalid(format!("series '{id}': {e}")))?;
            let joined = input.values.values().iter().chain(add.values.values());
            let values =
                SeriesData::with_gaps(joined.map(|v| v.is_finite().then_some(*v)).collect())
                    .map_err(|e| JobError::Invalid(format!("series '{id}': {e}")))?;
            let steps = add.values.len() as i64;
            let calendar = input.calendar.map(|c| SeriesCalendar {
                freq: c.freq,
                last: c.last.step(&c.freq, steps).unwrap_or(c.last),
            });
            let index = input.index.map(|a| a.advanced(add.values.len()));
            Ok((
                (id.to_string(), extended),
                NamedSeries {
                    id: id.to_string(),
                    values,
                    calendar,
                    index,
                },
            ))
        })
        .collect::<Result<Vec<_>, JobError>>()?;
    let (series, inputs): (Vec<_>, Vec<_>) = updated.into_iter().unzip();
    let summaries = inputs
        .iter()
        .map(|s: &NamedSeries| (s.values.n_missing(), s.calendar, s.index))
        .collect();
    let loaded = LoadedModel::new(series).with_inputs(spec, inputs);
    let bytes = loaded
        .encode()
        .map_err(|e| JobError::Failed(format!("encoding the filtered model failed: {e}")))?;
    Ok((loaded, bytes, summaries))
}

/// Backtests every series (in parallel). Stops early (failing with
/// [`store::jobs::CANCELLED`]) once `progress` says the work is no longer
/// wanted.
fn backtest_all(
    spec: &ModelSpec,
    series: &[NamedSeries],
    options: &BacktestOptions,
    progress: &progress::Progress,
) -> BacktestReply {
    let results = series
        .par_iter()
        .map(|s| {
            if progress.is_stopped() {
                return Err(JobError::Failed(store::jobs::CANCELLED.to_string()));
            }
            let run = backtest::backtest(spec, &s.values, options).map_err(|e| match e {
                backtest::BacktestError::Invalid(why) => {
                    JobError::Invalid(format!("series '{}': {why}", s.id))
                }
                backtest::BacktestError::Fit(why) => {
                    JobError::Failed(format!("series '{}' could not be fitted: {why}", s.id))
                }
            })?;
            progress.series_done();
            Ok((s, run))
        })
        .collect::<Result<Vec<_>, JobError>>()?;
    let overall = backtest::overall(&results.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>());
    Ok(BacktestResult {
        method: spec.method,
        horizon: options.horizon.get(),
        n_windows: options.n_windows,
        step_size: options.step_size,
        refit: options.refit,
        metrics: overall,
        series: results
            .into_iter()
            .map(|(s, r)| {
                let n = s.values.len() as i64;
                let has_axis = s.calendar.is_some() || s.index.is_some();
                // Index i of a series with a time axis: its last label moved
                // back by n - 1 - i steps.
                let at = |i: usize| label_after(s.calendar, s.index, i as i64 - (n - 1));
                SeriesBacktestResult {
                    id: s.id.clone(),
                    metrics: r.metrics,
                    windows: r
                        .windows
                        .into_iter()
                        .map(|w| BacktestWindow {
                            cutoff: w.cutoff,
                            cutoff_ds: at(w.cutoff),
                            ds: has_axis.then(|| {
                                (1..=w.actual.len())
                                    .filter_map(|k| at(w.cutoff + k))
                                    .collect()
                            }),
                            actual: w
                                .actual
                                .iter()
                                .map(|v| v.is_finite().then_some(*v))
                                .collect(),
                            mean: w.mean,
                            intervals: w.intervals,
                        })
                        .collect(),
                }
            })
            .collect(),
    })
}

/// Forecasts the requested series (all when `ids` is `None`), in order.
fn forecast_all(
    loaded: &LoadedModel,
    horizon: Horizon,
    levels: &[Level],
    ids: Option<&[String]>,
) -> Result<Vec<SeriesForecast>, JobError> {
    let picked: Vec<usize> = match ids {
        None => (0..loaded.len()).collect(),
        Some(ids) => {
            let unknown: Vec<&str> = ids
                .iter()
                .filter(|id| loaded.position(id).is_none())
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                let unknown: Vec<String> = unknown.into_iter().map(str::to_string).collect();
                return Err(unknown_ids(&unknown));
            }
            ids.iter().filter_map(|id| loaded.position(id)).collect()
        }
    };
    picked
        .into_iter()
        .map(|i| {
            let (id, fitted) = loaded.get(i);
            let forecast = fitted.forecast(horizon, levels);
            if !is_finite(&forecast) {
                return Err(JobError::Failed(format!(
                    "the model of series '{id}' produced a non-finite forecast"
                )));
            }
            Ok(SeriesForecast {
                id: id.to_string(),
                forecast,
            })
        })
        .collect()
}

fn is_finite(f: &Forecast) -> bool {
    f.mean.iter().all(|v| v.is_finite())
        && f.intervals
            .iter()
            .all(|i| i.lower.iter().all(|v| v.is_finite()) && i.upper.iter().all(|v| v.is_finite()))
}

/// Summaries of fitted series, for the fit's answer.
impl LoadedModel {
    fn summary(&self) -> Vec<SeriesFit> {
        (0..self.len())
            .map(|i| {
                let (id, fitted) = self.get(i);
                SeriesFit {
                    id: id.to_string(),
                    chosen: fitted.description().to_string(),
                    fallback: fitted.fallback().map(str::to_string),
                    n_obs: fitted.n_obs(),
                    n_missing: 0,
                    calendar: None,
                    index: None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Method, SeriesData};
    use store::{SqliteStore, VersionStatus};

    async fn setup() -> (tempfile::TempDir, Arc<dyn ModelStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ModelStore> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        (dir, store)
    }

    fn series(id: &str, values: Vec<f64>) -> NamedSeries {
        NamedSeries {
            id: id.into(),
            values: SeriesData::parse(values).unwrap(),
            calendar: None,
            index: None,
        }
    }

    #[test]
    fn observations_move_an_integer_axis_on() {
        let spec = ModelSpec::new(Method::Naive, None);
        let input = NamedSeries {
            index: Some(IndexAxis { last: 16, step: 4 }),
            ..series("a", vec![1.0, 2.0, 4.0])
        };
        let fitted = spec.fit(&input.values).unwrap();
        let old = LoadedModel::new(vec![("a".into(), fitted)]).with_inputs(spec, vec![input]);
        let (new, _, summaries) =
            observe_all(&old, 1, vec![series("a", vec![5.0, 6.0, 7.0])]).unwrap();
        let moved = Some(IndexAxis { last: 28, step: 4 });
        assert_eq!(new.inputs()[0].index, moved);
        assert_eq!(summaries, [(0, None, moved)]);
    }

    #[tokio::test]
    async fn fits_saves_and_forecasts_from_the_store() {
        let (_dir, store) = setup().await;
        let model = ModelName::parse("m").unwrap();
        let version = store
            .register_pending(&model, 2, None)
            .await
            .unwrap()
            .version();
        let worker = Worker::new(store.clone());
        let summary = worker
            .fit(FitJob {
                shard: None,
                base: None,
                model: model.clone(),
                version,
                spec: engine::ModelSpec::new(Method::Naive, None),
                series: vec![series("a", vec![1.0, 2.0, 3.0]), series("b", vec![5.0; 4])],
            })
            .await
            .unwrap();
        assert_eq!(summary.series.len(), 2);
        assert_eq!(summary.series[1].n_obs, 4);
        let info = store
            .wait_settled(&model, version, std::time::Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(info.status, VersionStatus::Ready);

        // A fresh worker has an empty cache and must read the store.
        let fresh = Worker::new(store.clone());
        let job = ForecastJob {
            model: model.clone(),
            version,
            horizon: Horizon::parse(3).unwrap(),
            levels: vec![Level::parse(90.0).unwrap()],
            series_ids: Some(vec!["b".into()]),
            shard: None,
        };
        let result = fresh.forecast(job.clone()).await.unwrap();
        assert_eq!(result.series.len(), 1);
        assert_eq!(result.series[0].id, "b");
        assert_eq!(result.series[0].forecast.mean, vec![5.0; 3]);
        assert_eq!(result.series[0].forecast.intervals.len(), 1);
        assert_eq!(worker.forecast(job).await.unwrap(), result);

        let unknown = ForecastJob {
            series_ids: Some(vec!["a".into(), "zz".into()]),
            shard: None,
            ..result_job(&model, version)
        };
        match fresh.forecast(unknown).await {
            Err(JobError::Invalid(msg)) => assert!(msg.contains("'zz'"), "{msg}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn result_job(model: &ModelName, version: Version) -> ForecastJob {
        ForecastJob {
            model: model.clone(),
            version,
            horizon: Horizon::parse(1).unwrap(),
            levels: vec![],
            series_ids: None,
            shard: None,
        }
    }

    #[tokio::test]
    async fn small_and_large_forecasts_agree() {
        let (_dir, store) = setup().await;
        let model = ModelName::parse("big").unwrap();
        let n = 300;
        let version = store
            .register_pending(&model, n, None)
            .await
            .unwrap()
            .version();
        let worker = Worker::new(store.clone());
        let all: Vec<NamedSeries> = (0..n)
            .map(|i| series(&format!("s{i}"), vec![1.0, 2.0, i as f64]))
            .collect();
        worker
            .fit(FitJob {
                shard: None,
                base: None,
                model: model.clone(),
                version,
                spec: engine::ModelSpec::new(Method::Naive, None),
                series: all,
            })
            .await
            .unwrap();
        let job = |ids: Option<Vec<String>>| ForecastJob {
            model: model.clone(),
            version,
            horizon: Horizon::parse(12).unwrap(),
            levels: vec![Level::parse(80.0).unwrap(), Level::parse(95.0).unwrap()],
            series_ids: ids,
            shard: None,
        };
        let large = worker.forecast(job(None)).await.unwrap();
        assert_eq!(large.series.len(), n);
        for i in [0, 7, n - 1] {
            let id = format!("s{i}");
            let small = worker.forecast(job(Some(vec![id.clone()]))).await.unwrap();
            assert_eq!(small.series.len(), 1);
            assert_eq!(small.series[0], large.series[i]);
            assert_eq!(small.series[0].id, id);
            assert_eq!(small.series[0].forecast.mean, vec![i as f64; 12]);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_forecasts_of_an_uncached_model_decode_it_once() {
        let (_dir, store) = setup().await;
        let model = ModelName::parse("wide").unwrap();
        let n = 20_000;
        let version = store
            .register_pending(&model, n, None)
            .await
            .unwrap()
            .version();
        Worker::new(store.clone())
            .fit(FitJob {
                shard: None,
                base: None,
                model: model.clone(),
                version,
                spec: engine::ModelSpec::new(Method::Naive, None),
                series: (0..n)
                    .map(|i| series(&format!("s{i}"), vec![1.0, 2.0, i as f64]))
                    .collect(),
            })
            .await
            .unwrap();
        // A fresh worker: nothing cached.
        let fresh = Arc::new(Worker::new(store.clone()));
        let start = Arc::new(tokio::sync::Barrier::new(32));
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let (fresh, start, model) = (fresh.clone(), start.clone(), model.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let job = ForecastJob {
                        series_ids: Some(vec![format!("s{i}")]),
                        shard: None,
                        ..result_job(&model, version)
                    };
                    fresh.forecast(job).await
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let result = t.await.unwrap().unwrap();
            assert_eq!(result.series[0].forecast.mean, vec![i as f64]);
        }
        assert_eq!(fresh.decodes(), 1, "each waiter decoded the model");
        assert!(lock(&fresh.loading).is_empty());
        // Later forecasts are answered from the cache.
        fresh.forecast(result_job(&model, version)).await.unwrap();
        assert_eq!(fresh.decodes(), 1);
    }

    #[tokio::test]
    async fn an_unavailable_store_is_not_a_verdict_on_the_fit() {
        let (dir, store) = setup().await;
        let model = ModelName::parse("m").unwrap();
        let version = store
            .register_pending(&model, 1, None)
            .await
            .unwrap()
            .version();
        // A closed store answers "unavailable" to everything.
        let sqlite = SqliteStore::open(&dir.path().join("other")).await.unwrap();
        sqlite.close().await;
        let down: Arc<dyn ModelStore> = Arc::new(sqlite);
        let worker = Worker::new(down).store_retry_for(std::time::Duration::from_millis(300));
        let reply = worker
            .fit(FitJob {
                shard: None,
                base: None,
                model: model.clone(),
                version,
                spec: engine::ModelSpec::new(Method::Naive, None),
                series: vec![series("a", vec![1.0, 2.0, 3.0])],
            })
            .await;
        assert!(matches!(reply, Err(JobError::Unavailable(_))), "{reply:?}");
        assert!(matches!(
            worker.forecast(result_job(&model, version)).await,
            Err(JobError::Unavailable(_))
        ));
    }

    /// A rolling deploy: a newer worker saved a version in a layout this
    /// worker cannot read. This worker must leave it to the newer one (a 503
    /// the client retries), not fail it for ever.
    #[tokio::test]
    async fn a_state_written_by_a_newer_worker_is_left_to_it() {
        let (_dir, store) = setup().await;
        let model = ModelName::parse("newer").unwrap();
        let version = store
            .register_pending(&model, 1, None)
            .await
            .unwrap()
            .version();
        let fitted = engine::ModelSpec::new(Method::Naive, None)
            .fit(&SeriesData::parse(vec![1.0, 2.0, 3.0]).unwrap())
            .unwrap();
        let current = LoadedModel::new(vec![("a".into(), fitted)])
            .encode()
            .unwrap();
        // The header of the next state layout, then today's body.
        let mut newer = postcard::to_stdvec(&(u32::MAX, engine::FORMAT_VERSION)).unwrap();
        newer.extend_from_slice(&current[2..]);
        let summary = FitSummary {
            model: model.clone(),
            version,
            method: Method::Naive,
            series: vec![],
            base: None,
        };
        store
            .complete(&model, version, &newer, &summary)
            .await
            .unwrap();
        let worker = Worker::new(store.clone());
        match worker.forecast(result_job(&model, version)).await {
            Err(JobError::Unavailable(msg)) => assert!(msg.contains("layout"), "{msg}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        // The version itself is untouched: still ready for the newer worker.
        let info = store
            .wait_settled(&model, version, std::time::Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(info.status, VersionStatus::Ready);
    }

    /// A version fitted in shards by separate jobs: ready with the last
    /// shard; a forecast of a few series reads only their shards; a
    /// forecast of all reads every shard, in shard order.
    #[tokio::test]
    async fn a_sharded_fit_is_stored_and_read_by_shard() {
        let (_dir, store) = setup().await;
        let model = ModelName::parse("sharded").unwrap();
        let n = 60;
        let version = store
            .register_pending(&model, n, None)
            .await
            .unwrap()
            .version();
        let whole = FitJob {
            base: None,
            shard: None,
            model: model.clone(),
            version,
            spec: engine::ModelSpec::new(Method::Naive, None),
            series: (0..n)
                .map(|i| series(&format!("s{i}"), vec![1.0, i as f64]))
                .collect(),
        };
        let sizes = protocol::shard::ShardSizes {
            series: 20,
            points: 1_000,
        };
        let shards = protocol::shard::split(whole, &sizes);
        assert_eq!(shards.len(), 3);
        let worker = Worker::new(store.clone());
        for (i, job) in shards.iter().enumerate() {
            let pending = store
                .wait_settled(&model, version, std::time::Duration::ZERO)
                .await;
            assert!(pending.is_err(), "ready before shard {i} was stored");
            let reply = worker.fit(job.clone()).await.unwrap();
            assert_eq!(reply.series.len(), job.series.len());
        }
        let info = store
            .wait_settled(&model, version, std::time::Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(info.status, VersionStatus::Ready);
        assert_eq!(info.summary.unwrap().series.len(), n);

        let fresh = Worker::new(store.clone());
        let same_shard: Vec<String> = shards[1]
            .series
            .iter()
            .take(3)
            .map(|s| s.id.clone())
            .collect();
        let asked = ForecastJob {
            series_ids: Some(same_shard.clone()),
            shard: None,
            ..result_job(&model, version)
        };
        let answer = fresh.forecast(asked).await.unwrap();
        let ids: Vec<&str> = answer.series.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, same_shard, "in the order asked");
        assert_eq!(fresh.decodes(), 1, "read more than the one shard");
        // Ids of two shards, asked in an order that mixes them.
        let mixed = vec![shards[2].series[0].id.clone(), same_shard[0].clone()];
        let answer = fresh
            .forecast(ForecastJob {
                series_ids: Some(mixed.clone()),
                shard: None,
                ..result_job(&model, version)
            })
            .await
            .unwrap();
        assert_eq!(answer.series[0].id, mixed[0]);
        assert_eq!(answer.series[1].id, mixed[1]);
        assert_eq!(fresh.decodes(), 2, "shard 2 cached, shard 3 read");
        for s in &answer.series {
            let i: f64 = s.id[1..].parse().unwrap();
            assert_eq!(s.forecast.mean, vec![i]);
        }
        match fresh
            .forecast(ForecastJob {
                series_ids: Some(vec!["s1".into(), "nope".into()]),
                shard: None,
                ..result_job(&model, version)
            })
            .await
        {
            Err(JobError::Invalid(msg)) => assert!(msg.contains("'nope'"), "{msg}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        let all = fresh.forecast(result_job(&model, version)).await.unwrap();
        let expected: Vec<String> = shards
            .iter()
            .flat_map(|j| j.series.iter().map(|s| s.id.clone()))
            .collect();
        let got: Vec<String> = all.series.iter().map(|s| s.id.clone()).collect();
        assert_eq!(got, expected);
        assert_eq!(fresh.decodes(), 3);
        // One shard whole, as a download asks for it: that shard's series
        // only, in stored order, read alone.
        let one = Worker::new(store.clone());
        let answer = one
            .forecast(ForecastJob {
                shard: Some(2),
                ..result_job(&model, version)
            })
            .await
            .unwrap();
        let got: Vec<&str> = answer.series.iter().map(|s| s.id.as_str()).collect();
        let expected: Vec<&str> = shards[2].series.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(got, expected);
        assert_eq!(one.decodes(), 1, "read more than the one shard");
        // Read through the cache, not into it: asked again, read again.
        one.forecast(ForecastJob {
            shard: Some(2),
            ..result_job(&model, version)
        })
        .await
        .unwrap();
        assert_eq!(one.decodes(), 2, "a download's shard was cached");
        match one
            .forecast(ForecastJob {
                shard: Some(3),
                ..result_job(&model, version)
            })
            .await
        {
            Err(JobError::Invalid(msg)) => assert!(msg.contains("shard 3"), "{msg}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        // Work that needs every series sees the shards as one model.
        let merged = fresh.load(&model, version).await.unwrap();
        assert_eq!((merged.len(), merged.inputs().len()), (n, n));
    }

    #[tokio::test]
    async fn forecasting_a_missing_version_is_our_failure() {
        let (_dir, store) = setup().await;
        let worker = Worker::new(store);
        let model = ModelName::parse("nope").unwrap();
        assert!(matches!(
            worker.forecast(result_job(&model, 1)).await,
            Err(JobError::Failed(_))
        ));
    }

    /// A backtest run as a job reports its progress there and stops once
    /// the job is cancelled, instead of finishing work nobody will read.
    #[tokio::test]
    async fn a_cancelled_backtest_job_stops_its_work() {
        let (_dir, store) = setup().await;
        let model = ModelName::parse("m").unwrap();
        // Enough refits that the work outlasts the cancel by far.
        let n = 400;
        let job = store.create_job("backtest", &model, 0, n).await.unwrap();
        let data = (0..n)
            .map(|i| {
                let values = (0..150)
                    .map(|t| ((t * 7 + i) % 13) as f64 + 0.1 * t as f64)
                    .collect();
                series(&format!("s{i}"), values)
            })
            .collect();
        let worker = Worker::new(store.clone());
        let backtest = worker.backtest(BacktestJob {
            spec: ModelSpec::new(Method::Auto, None),
            series: data,
            source: None,
            options: BacktestOptions {
                horizon: Horizon::parse(6).unwrap(),
                n_windows: 5,
                step_size: 1,
                refit: true,
                levels: vec![],
                include_forecasts: false,
            },
            job: Some(job.id.clone()),
        });
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            store
                .finish_job(&job.id, Err(store::jobs::CANCELLED))
                .await
                .unwrap()
        };
        let (reply, cancelled) = tokio::join!(backtest, cancel);
        assert!(cancelled, "the job had ended before it was cancelled");
        assert_eq!(
            reply.map(|_| ()),
            Err(JobError::Failed(store::jobs::CANCELLED.to_string()))
        );
        let seen = store.job(&job.id).await.unwrap().unwrap();
        assert!(seen.done < n, "{} of {n} series done", seen.done);
    }
}
