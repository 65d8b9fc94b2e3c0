//! Rolling-origin evaluation (backtesting): how well a [`ModelSpec`] would
//! have forecast a series, measured on its own past.
//!
//! `n_windows` windows of `horizon` steps end at the end of the series, their
//! origins `step_size` apart: window `k`'s training data is `y[..=cutoff_k]`
//! and its test data the `horizon` values after it, with
//! `cutoff_k = n - horizon - (n_windows - 1 - k) * step_size - 1`. With
//! `refit` the model is fitted again at every origin; without it, it is
//! fitted once at the first origin and filtered forward
//! ([`FittedModel::filter`]) to the later ones, as a deployed model that
//! receives observations would be.
//!
//! Metrics (missing actual values are not scored): MAE, RMSE and sMAPE (in
//! percent, 0–200; 0 where actual and forecast are both 0) over every scored
//! point of every window; MASE is each window's MAE divided by the in-sample
//! MAE of the seasonal naive forecast on that window's training data (season
//! = the shortest season given, 1 if none), averaged over the windows where
//! that scale is positive; coverage is the share of scored actual values
//! inside each level's interval. Overall metrics ([`overall`]) are means over
//! series.

use crate::{
    FitError, FittedModel, Forecast, Horizon, Interval, Level, ModelSpec, SeriesData, MIN_TRAIN_LEN,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// How to backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestOptions {
    pub horizon: Horizon,
    /// Number of windows, at least 1.
    pub n_windows: usize,
    /// Steps between consecutive origins, at least 1.
    pub step_size: usize,
    /// Refit at every origin (true) or fit once and filter forward (false).
    pub refit: bool,
    pub levels: Vec<Level>,
    /// Keep every window's forecast in the answer.
    pub include_forecasts: bool,
}

/// Why a series could not be backtested.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BacktestError {
    /// The request does not fit the series: the client's fault.
    #[error("{0}")]
    Invalid(String),
    /// No model could be fitted.
    #[error(transparent)]
    Fit(#[from] FitError),
}

/// Accuracy of forecasts against what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Metrics {
    /// `None` (as are `rmse` and `smape`) when no actual value was scored
    /// (every one missing) or the errors are beyond the range of an `f64`.
    pub mae: Option<f64>,
    pub rmse: Option<f64>,
    /// Symmetric MAPE in percent (0–200).
    pub smape: Option<f64>,
    /// `None` when no window's training data has a positive naive scale
    /// (e.g. a constant series).
    pub mase: Option<f64>,
    /// Share of actual values inside the interval, by level (`"80"`,
    /// `"97.5"`).
    pub coverage: BTreeMap<String, f64>,
}

/// One window's forecast and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Index (0-based) of the window's last training value.
    pub cutoff: usize,
    /// The values that followed (NaN where missing).
    pub actual: Vec<f64>,
    pub mean: Vec<f64>,
    pub intervals: Vec<Interval>,
}

/// The backtest of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesBacktest {
    pub metrics: Metrics,
    /// Every window, oldest first, when forecasts were asked for; empty
    /// otherwise.
    pub windows: Vec<Window>,
}

/// The key of a level in [`Metrics::coverage`]: `80`, `97.5`.
pub fn level_key(level: f64) -> String {
    if level.fract() == 0.0 {
        format!("{level:.0}")
    } else {
        format!("{level}")
    }
}

/// The cutoffs of the windows, oldest first, or why there are none.
pub fn cutoffs(n: usize, opts: &BacktestOptions) -> Result<Vec<usize>, BacktestError> {
    let h = opts.horizon.get();
    if opts.n_windows == 0 || opts.step_size == 0 {
        return Err(BacktestError::Invalid(
            "n_windows and step_size must be at least 1".into(),
        ));
    }
    let span = (opts.n_windows - 1)
        .checked_mul(opts.step_size)
        .and_then(|s| s.checked_add(h));
    // The first window trains on what a fit needs at least.
    let need = span.and_then(|s| s.checked_add(MIN_TRAIN_LEN));
    match need {
        Some(need) if need <= n => Ok((0..opts.n_windows)
            .map(|k| n - h - (opts.n_windows - 1 - k) * opts.step_size - 1)
            .collect()),
        _ => Err(BacktestError::Invalid(format!(
            "a series of {n} values is too short for {} window(s) of horizon {h} every {} \
             step(s): it needs at least {} values",
            opts.n_windows,
            opts.step_size,
            need.map_or("too many".to_string(), |s| s.to_string())
        ))),
    }
}

/// Backtests `spec` on `y`.
pub fn backtest(
    spec: &ModelSpec,
    y: &SeriesData,
    opts: &BacktestOptions,
) -> Result<SeriesBacktest, BacktestError> {
    let values = y.values();
    let h = opts.horizon.get();
    let season = spec.seasons.first().copied().unwrap_or(1).max(1);
    let mut fitted: Option<FittedModel> = None;
    let mut windows = Vec::with_capacity(opts.n_windows);
    for cutoff in cutoffs(values.len(), opts)? {
        let train = sub_series(&values[..=cutoff])?;
        let model = match (&fitted, opts.refit) {
            (Some(first), false) => first
                .filter(&train)
                .map_err(|e| BacktestError::Invalid(e.to_string()))?,
            _ => spec.fit(&train)?,
        };
        if fitted.is_none() {
            fitted = Some(model.clone());
        }
        let Forecast { mean, intervals } = model.forecast(opts.horizon, &opts.levels);
        windows.push(Window {
            cutoff,
            actual: values[cutoff + 1..cutoff + 1 + h].to_vec(),
            mean,
            intervals,
        });
    }
    let metrics = score(&windows, values, season);
    if !opts.include_forecasts {
        windows.clear();
    }
    Ok(SeriesBacktest { metrics, windows })
}

/// Overall metrics: the mean over series of each metric, over the series
/// that have it (a series with no scored value counts for none).
pub fn overall(series: &[SeriesBacktest]) -> Metrics {
    let mean = |f: &dyn Fn(&Metrics) -> Option<f64>| {
        let values: Vec<f64> = series.iter().filter_map(|s| f(&s.metrics)).collect();
        finite((!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64))
    };
    let mut coverage: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for s in series {
        for (k, v) in &s.metrics.coverage {
            let entry = coverage.entry(k.clone()).or_insert((0.0, 0));
            entry.0 += v;
            entry.1 += 1;
        }
    }
    Metrics {
        mae: mean(&|m| m.mae),
        rmse: mean(&|m| m.rmse),
        smape: mean(&|m| m.smape),
        mase: mean(&|m| m.mase),
        coverage: coverage
            .into_iter()
            .map(|(k, (sum, n))| (k, sum / n as f64))
            .collect(),
    }
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

fn sub_series(values: &[f64]) -> Result<SeriesData, BacktestError> {
    SeriesData::with_gaps(values.iter().map(|v| v.is_finite().then_some(*v)).collect()).map_err(
        |e| BacktestError::Invalid(format!("the training data of a window is unusable: {e}")),
    )
}

/// In-sample MAE of the seasonal naive forecast (season `m`, naive when the
/// data is shorter than two seasons) over the observed pairs of `train`.
fn naive_scale(train: &[f64], m: usize) -> Option<f64> {
    let m = if train.len() > m { m } else { 1 };
    let diffs: Vec<f64> = (m..train.len())
        .map(|t| (train[t] - train[t - m]).abs())
        .filter(|d| d.is_finite())
        .collect();
    let scale = diffs.iter().sum::<f64>() / diffs.len().max(1) as f64;
    (!diffs.is_empty() && scale > 0.0).then_some(scale)
}

/// Root mean square of the absolute errors `errors`, scaled by the largest
/// so that squaring cannot overflow (nor underflow): finite whenever the
/// errors are.
fn root_mean_square(errors: &[f64]) -> f64 {
    let big = errors.iter().fold(0.0, |m: f64, e| m.max(e.abs()));
    if big == 0.0 || !big.is_finite() {
        return big;
    }
    let sq: f64 = errors.iter().map(|e| (e / big) * (e / big)).sum();
    big * (sq / errors.len() as f64).sqrt()
}

fn score(windows: &[Window], values: &[f64], season: usize) -> Metrics {
    let (mut abs, mut smape, mut count) = (0.0, 0.0, 0usize);
    let mut errors = Vec::new();
    let mut mases = Vec::new();
    let mut inside: BTreeMap<String, usize> = BTreeMap::new();
    for w in windows {
        let (mut w_abs, mut w_count) = (0.0, 0usize);
        for (i, (a, f)) in w.actual.iter().zip(&w.mean).enumerate() {
            if !a.is_finite() {
                continue;
            }
            let e = (a - f).abs();
            abs += e;
            errors.push(e);
            let denom = a.abs() + f.abs();
            smape += if denom > 0.0 { 200.0 * e / denom } else { 0.0 };
            count += 1;
            w_abs += e;
            w_count += 1;
            for band in &w.intervals {
                let hit = band.lower[i] <= *a && *a <= band.upper[i];
                *inside.entry(level_key(band.level)).or_insert(0) += usize::from(hit);
            }
        }
        if w_count > 0 {
            if let Some(scale) = naive_scale(&values[..=w.cutoff], season) {
                mases.push(w_abs / w_count as f64 / scale);
            }
        }
    }
    if count == 0 {
        // Nothing to score: no metric, rather than a perfect one.
        return Metrics {
            mae: None,
            rmse: None,
            smape: None,
            mase: None,
            coverage: BTreeMap::new(),
        };
    }
    let c = count as f64;
    let mut coverage: BTreeMap<String, f64> = windows
        .first()
        .map(|w| {
            w.intervals
                .iter()
                .map(|b| (level_key(b.level), 0.0))
                .collect()
        })
        .unwrap_or_default();
    for (k, hits) in inside {
        coverage.insert(k, hits as f64 / c);
    }
    Metrics {
        mae: finite(Some(abs / c)),
        rmse: finite(Some(root_mean_square(&errors))),
        smape: finite(Some(smape / c)),
        mase: finite((!mases.is_empty()).then(|| mases.iter().sum::<f64>() / mases.len() as f64)),
        coverage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;

    fn opts(h: i64, n_windows: usize, step: usize, refit: bool) -> BacktestOptions {
        BacktestOptions {
            horizon: Horizon::parse(h).unwrap(),
            n_windows,
            step_size: step,
            refit,
            levels: vec![Level::parse(80.0).unwrap()],
            include_forecasts: true,
        }
    }

    #[test]
    fn naive_on_a_line_by_hand() {
        // y_t = 2t, n = 20, h = 3, 2 windows every 2 steps: cutoffs 14 and
        // 16. Naive forecasts the last value, so the errors are 2, 4, 6 in
        // every window: MAE 4, RMSE sqrt(56/3); the naive scale of any
        // training data is 2, so MASE 2.
        let y = SeriesData::parse((0..20).map(|t| 2.0 * t as f64).collect()).unwrap();
        let spec = ModelSpec::new(Method::Naive, None);
        let r = backtest(&spec, &y, &opts(3, 2, 2, true)).unwrap();
        assert_eq!(
            r.windows.iter().map(|w| w.cutoff).collect::<Vec<_>>(),
            [14, 16]
        );
        assert_eq!(r.windows[0].mean, vec![28.0; 3]);
        assert_eq!(r.windows[1].actual, vec![34.0, 36.0, 38.0]);
        let m = &r.metrics;
        assert!((m.mae.unwrap() - 4.0).abs() < 1e-9, "{m:?}");
        assert!(
            (m.rmse.unwrap() - (56.0f64 / 3.0).sqrt()).abs() < 1e-9,
            "{m:?}"
        );
        assert!((m.mase.unwrap() - 2.0).abs() < 1e-9, "{m:?}");
        // sMAPE: 200 * e / (a + f) per point, by hand.
        let mut s = 0.0;
        for (cut, f) in [(14.0, 28.0), (16.0, 32.0)] {
            for k in 1..=3 {
                let a: f64 = 2.0 * (cut + k as f64);
                s += 200.0 * (a - f) / (a + f);
            }
        }
        assert!((m.smape.unwrap() - s / 6.0).abs() < 1e-9, "{m:?}");
        assert!(m.coverage.contains_key("80"));
        // Refit or filter forward: the same for naive.
        // (The intervals differ: filtering keeps the first fit's calibration.)
        let f = backtest(&spec, &y, &opts(3, 2, 2, false)).unwrap();
        assert_eq!(
            (f.metrics.mae, f.metrics.rmse, f.metrics.mase),
            (m.mae, m.rmse, m.mase)
        );
    }

    #[test]
    fn filter_forward_reuses_the_first_fit() {
        let y = SeriesData::parse(
            (0..80)
                .map(|t| 50.0 + t as f64 * 0.3 + [4.0, -2.0, 1.0, -3.0][t % 4])
                .collect(),
        )
        .unwrap();
        let spec = ModelSpec::new(Method::Ets, Some(4));
        let o = opts(4, 3, 4, false);
        let r = backtest(&spec, &y, &o).unwrap();
        let first = spec.fit(&sub_series(&y.values()[..=67]).unwrap()).unwrap();
        let last = first
            .filter(&sub_series(&y.values()[..=75]).unwrap())
            .unwrap();
        assert_eq!(r.windows[2].cutoff, 75);
        assert_eq!(r.windows[2].mean, last.forecast(o.horizon, &o.levels).mean);
        assert!(r.metrics.mae.is_some_and(|e| e < 1.0), "{:?}", r.metrics);
    }

    #[test]
    fn rmse_of_huge_errors_does_not_overflow() {
        // Naive on [1, 2, 3, 4, 6]·1e200, one window of horizon 1: forecast
        // 4e200, actual 6e200, error 2e200 (its square overflows an f64).
        let y = SeriesData::parse(vec![1e200, 2e200, 3e200, 4e200, 6e200]).unwrap();
        let spec = ModelSpec::new(Method::Naive, None);
        let m = backtest(&spec, &y, &opts(1, 1, 1, true)).unwrap().metrics;
        assert_eq!(m.mae, Some(2e200), "{m:?}");
        assert!((m.rmse.unwrap() / 2e200 - 1.0).abs() < 1e-12, "{m:?}");
        // Errors 3e200 and 4e200: sqrt((9 + 16) / 2)·1e200.
        let w = Window {
            cutoff: 1,
            actual: vec![3e200, 4e200],
            mean: vec![0.0, 0.0],
            intervals: vec![],
        };
        let m = score(&[w], &[0.0, 1.0, 3e200, 4e200], 1);
        let want = 12.5f64.sqrt() * 1e200;
        assert!((m.rmse.unwrap() / want - 1.0).abs() < 1e-12, "{m:?}");
        // And tiny ones do not underflow to 0.
        assert!(
            (root_mean_square(&[3e-200, 4e-200]) / (12.5f64.sqrt() * 1e-200) - 1.0).abs() < 1e-12
        );
        assert_eq!(root_mean_square(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn coverage_counts_hits() {
        let w = Window {
            cutoff: 1,
            actual: vec![1.0, 5.0, f64::NAN, 3.0],
            mean: vec![1.0; 4],
            intervals: vec![Interval {
                level: 90.0,
                lower: vec![0.0; 4],
                upper: vec![4.0; 4],
            }],
        };
        let m = score(&[w], &[0.0, 1.0, 1.0, 5.0, 0.0, 3.0], 1);
        assert!((m.coverage["90"] - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.mae.unwrap() - 2.0).abs() < 1e-12);
        // Training data [0, 1]: naive scale 1.
        assert!((m.mase.unwrap() - 2.0).abs() < 1e-12);

        // A window whose actual values are all missing scores nothing: no
        // metric at all, rather than a perfect one.
        let gone = Window {
            cutoff: 1,
            actual: vec![f64::NAN; 2],
            mean: vec![1.0; 2],
            intervals: vec![Interval {
                level: 90.0,
                lower: vec![0.0; 2],
                upper: vec![4.0; 2],
            }],
        };
        let m = score(&[gone], &[0.0, 1.0, f64::NAN, f64::NAN], 1);
        assert_eq!((m.mae, m.rmse, m.smape, m.mase), (None, None, None, None));
        assert!(m.coverage.is_empty(), "{m:?}");
    }

    #[test]
    fn too_short_is_the_clients_fault() {
        let y = SeriesData::parse(vec![1.0; 10]).unwrap();
        let spec = ModelSpec::new(Method::Naive, None);
        assert!(matches!(
            backtest(&spec, &y, &opts(5, 2, 5, true)),
            Err(BacktestError::Invalid(_))
        ));
        // 4 + 4 steps tested leave 2 values to train the first window on.
        assert!(backtest(&spec, &y, &opts(4, 2, 4, true)).is_err());
        let first = backtest(&spec, &y, &opts(3, 2, 4, true)).unwrap();
        assert_eq!(first.windows[0].cutoff + 1, MIN_TRAIN_LEN);
        assert!(cutoffs(10, &opts(1, usize::MAX, usize::MAX, true)).is_err());
    }

    #[test]
    fn overall_is_the_mean_over_series() {
        let one = |mae: f64, mase: Option<f64>| SeriesBacktest {
            metrics: Metrics {
                mae: Some(mae),
                rmse: Some(mae),
                smape: Some(mae),
                mase,
                coverage: [("80".to_string(), mae / 10.0)].into_iter().collect(),
            },
            windows: vec![],
        };
        let unscored = SeriesBacktest {
            metrics: score(&[], &[], 1),
            windows: vec![],
        };
        let m = overall(&[one(1.0, Some(2.0)), one(3.0, None), unscored]);
        assert_eq!(m.mae, Some(2.0));
        assert_eq!(m.mase, Some(2.0));
        assert!((m.coverage["80"] - 0.2).abs() < 1e-12);
        assert_eq!(level_key(97.5), "97.5");
    }
}
