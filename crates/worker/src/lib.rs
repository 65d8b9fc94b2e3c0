//! The worker: takes fit and forecast jobs, runs the engine, keeps fitted
//! models in the store and answers.
//!
//! Long CPU work never runs on the async threads: fits go to
//! `spawn_blocking` and fit the series of a job in parallel on rayon's pool;
//! forecasts run on their own blocking thread without rayon, so they never
//! wait behind fits. The one exception is a tiny forecast of a cached model
//! (a few series, a few steps: microseconds of work), which runs in place:
//! handing it to a blocking thread and back would cost more than the work.

mod cache;
mod redelivery;
mod state;

pub use redelivery::Redeliverable;

use async_trait::async_trait;
use cache::ModelCache;
use engine::{Forecast, Horizon, Level, ModelSpec};
use protocol::{
    FitJob, FitReply, FitSummary, ForecastJob, ForecastReply, ForecastResult, JobError, ModelName,
    NamedSeries, SeriesFit, SeriesForecast, Version,
};
use rayon::prelude::*;
use state::LoadedModel;
use std::sync::Arc;
use std::time::Instant;
use store::ModelStore;
use transport::JobHandler;

/// Default size of the model cache, in series.
pub const DEFAULT_CACHE_SERIES: usize = 500_000;

/// Forecasts of at most this many values (series × steps × (1 + levels))
/// and [`INLINE_SERIES`] series run on the async thread. The engine's
/// forecasts are linear in the steps: measured in release, the costliest
/// method (`auto`, an ensemble) takes ~25 µs for 512 values of one series
/// and ~4 µs per series at 21 steps, so ~35 µs at worst here. Anything
/// larger, such as one step of a 1000-series model, goes to a blocking
/// thread.
const INLINE_VALUES: usize = 512;
/// See [`INLINE_VALUES`].
const INLINE_SERIES: usize = 8;

/// Runs jobs against a store.
pub struct Worker {
    store: Arc<dyn ModelStore>,
    cache: ModelCache,
}

impl Worker {
    /// A worker whose cache keeps up to [`DEFAULT_CACHE_SERIES`] fitted series.
    pub fn new(store: Arc<dyn ModelStore>) -> Self {
        Self::with_cache(store, DEFAULT_CACHE_SERIES)
    }

    /// A worker whose cache keeps up to `cache_series` fitted series.
    pub fn with_cache(store: Arc<dyn ModelStore>, cache_series: usize) -> Self {
        Self {
            store,
            cache: ModelCache::new(cache_series),
        }
    }

    /// The fitted model of a ready version, from the cache or the store.
    async fn load(
        &self,
        model: &ModelName,
        version: Version,
    ) -> Result<Arc<LoadedModel>, JobError> {
        if let Some(hit) = self.cache.get(model, version) {
            return Ok(hit);
        }
        let bytes = self.store.load_state(model, version).await.map_err(|e| {
            JobError::Failed(format!("loading version {version} of model '{model}': {e}"))
        })?;
        let loaded = tokio::task::spawn_blocking(move || LoadedModel::decode(&bytes))
            .await
            .map_err(|_| JobError::Failed("decoding a stored model panicked".into()))?
            .map_err(|e| JobError::Failed(format!("version {version} of model '{model}': {e}")))?;
        let loaded = Arc::new(loaded);
        self.cache.insert(model, version, loaded.clone());
        Ok(loaded)
    }

    async fn fail_version(&self, model: &ModelName, version: Version, reason: String) -> JobError {
        tracing::warn!(%model, version, %reason, "fit failed");
        if let Err(e) = self.store.fail(model, version, &reason).await {
            tracing::error!(%model, version, error = %e, "could not record a failed fit");
        }
        JobError::Failed(reason)
    }
}

#[async_trait]
impl JobHandler for Worker {
    async fn fit(&self, job: FitJob) -> FitReply {
        let FitJob {
            model,
            version,
            spec,
            series,
        } = job;
        let started = Instant::now();
        let n_series = series.len();
        let method = spec.method;
        // What the summary reports of each series' input, in fit order.
        let inputs: Vec<_> = series
            .iter()
            .map(|s| (s.values.n_missing(), s.calendar))
            .collect();
        let fitted = tokio::task::spawn_blocking(move || fit_all(spec, series)).await;
        let (loaded, bytes) = match fitted {
            Ok(Ok(done)) => done,
            Ok(Err(reason)) => return Err(self.fail_version(&model, version, reason).await),
            Err(_) => {
                let reason = "the engine crashed while fitting".to_string();
                return Err(self.fail_version(&model, version, reason).await);
            }
        };
        let summary = FitSummary {
            model: model.clone(),
            version,
            method,
            series: loaded
                .summary()
                .into_iter()
                .zip(inputs)
                .map(|(fit, (n_missing, calendar))| SeriesFit {
                    n_missing,
                    calendar,
                    ..fit
                })
                .collect(),
        };
        if let Err(e) = self.store.complete(&model, version, &bytes, &summary).await {
            let reason = format!("saving the fitted model failed: {e}");
            return Err(self.fail_version(&model, version, reason).await);
        }
        self.cache.insert(&model, version, Arc::new(loaded));
        tracing::info!(
            %model,
            version,
            n_series,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "fit done"
        );
        Ok(summary)
    }

    async fn forecast(&self, job: ForecastJob) -> ForecastReply {
        let loaded = self.load(&job.model, job.version).await?;
        let ForecastJob {
            model,
            version,
            horizon,
            levels,
            series_ids,
        } = job;
        let crashed = || JobError::Failed("the engine crashed while forecasting".into());
        let n_series = series_ids.as_ref().map_or(loaded.len(), Vec::len);
        let values = n_series
            .saturating_mul(horizon.get())
            .saturating_mul(1 + levels.len());
        let series = if values <= INLINE_VALUES && n_series <= INLINE_SERIES {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                forecast_all(&loaded, horizon, &levels, series_ids.as_deref())
            }))
            .map_err(|_| crashed())??
        } else {
            tokio::task::spawn_blocking(move || {
                forecast_all(&loaded, horizon, &levels, series_ids.as_deref())
            })
            .await
            .map_err(|_| crashed())??
        };
        Ok(ForecastResult {
            model,
            version,
            series,
        })
    }
}

/// Fits every series (in parallel) and encodes the result for the store.
fn fit_all(spec: ModelSpec, series: Vec<NamedSeries>) -> Result<(LoadedModel, Vec<u8>), String> {
    let fitted = series
        .into_par_iter()
        .map(|s| match spec.fit(&s.values) {
            Ok(fitted) => Ok((s.id, fitted)),
            Err(e) => Err(format!("series '{}' could not be fitted: {e}", s.id)),
        })
        .collect::<Result<Vec<_>, String>>()?;
    let loaded = LoadedModel::new(fitted);
    let bytes = loaded
        .encode()
        .map_err(|e| format!("encoding the fitted model failed: {e}"))?;
    Ok((loaded, bytes))
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
                let shown: Vec<String> = unknown
                    .iter()
                    .take(10)
                    .map(|id| format!("'{id}'"))
                    .collect();
                let more = if unknown.len() > 10 { ", ..." } else { "" };
                return Err(JobError::Invalid(format!(
                    "unknown series id{} {}{more}",
                    if unknown.len() == 1 { "" } else { "s" },
                    shown.join(", ")
                )));
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
        }
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
        };
        let result = fresh.forecast(job.clone()).await.unwrap();
        assert_eq!(result.series.len(), 1);
        assert_eq!(result.series[0].id, "b");
        assert_eq!(result.series[0].forecast.mean, vec![5.0; 3]);
        assert_eq!(result.series[0].forecast.intervals.len(), 1);
        assert_eq!(worker.forecast(job).await.unwrap(), result);

        let unknown = ForecastJob {
            series_ids: Some(vec!["a".into(), "zz".into()]),
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
        };
        // 300 series are far above the inline limits; one series is below.
        assert!(n > INLINE_SERIES && n * 12 * 3 > INLINE_VALUES && 12 * 3 <= INLINE_VALUES);
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
}
