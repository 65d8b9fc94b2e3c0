//! Configure → fit → forecast: the engine's public model API.

use crate::intervals::Bands;
use crate::models::{self, intermittent, State};
use crate::seasonal::is_seasonal;
use crate::{Horizon, Level, Method, SeriesData};
use serde::{Deserialize, Serialize};
use std::panic::{catch_unwind, AssertUnwindSafe};
use thiserror::Error;

/// Version of the serialized [`FittedModel`] layout; bump on any change, and
/// keep a reader for the layout it replaces ([`FittedModelV2`]).
///
/// 3: `n_missing`, `scale`, `nonnegative` appended; `State::Intermittent`
/// and `State::Mstl` appended (`State::Dhr` later, also appended: older
/// files still read).
pub const FORMAT_VERSION: u32 = 3;

/// What to fit: the method, the seasons, and whether forecasts may go below
/// zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ModelSpec {
    pub method: Method,
    /// Season lengths the client gave (observations per cycle: 12 for
    /// monthly data with a yearly cycle; `[24, 168]` for hourly data with a
    /// daily and a weekly cycle). `[1]` means "no seasonality"; empty means
    /// none was given and the engine looks for seasons itself.
    #[serde(default)]
    pub seasons: Vec<usize>,
    /// With no `seasons`: lengths to test against the data first (e.g. from
    /// the series' frequency: hourly gives 24 and 168); each is kept only if
    /// the data supports it.
    #[serde(default)]
    pub season_candidates: Vec<usize>,
    /// Clip forecasts and interval bounds at zero. `None`: decided from the
    /// data: on for counts (every observed value a non-negative integer) and
    /// for an intermittent-demand model (chosen or switched to by `auto`) on
    /// values that are all ≥ 0; off otherwise.
    #[serde(default)]
    pub nonnegative: Option<bool>,
}

/// A fit that could not produce any model, not even a fallback.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FitError {
    #[error("{0}")]
    Failed(String),
}

impl ModelSpec {
    /// One season length given (or `None`: no seasonality), as the original
    /// API had it.
    pub fn new(method: Method, season_length: Option<usize>) -> Self {
        Self {
            method,
            seasons: vec![season_length.unwrap_or(1).max(1)],
            ..Self::default()
        }
    }

    /// Season lengths given by the client; empty: find them.
    pub fn with_seasons(method: Method, seasons: Vec<usize>) -> Self {
        Self {
            method,
            seasons,
            ..Self::default()
        }
    }

    /// Fits the model. When the requested method cannot be fitted to this
    /// series, a simpler one is used and [`FittedModel::fallback`] says why.
    pub fn fit(&self, y: &SeriesData) -> Result<FittedModel, FitError> {
        y.check_missing()
            .map_err(|e| FitError::Failed(e.to_string()))?;
        // Models fit and calibrate on the series divided by a power of two
        // near its typical size: squared errors cannot overflow, and the
        // result is equivariant to the scale of the data.
        let scale = scale_of(y.values());
        let filled = filled_for_models(y, |prefix, h| {
            let model = self.fit(prefix).ok()?;
            Some(model.forecast(h, &[]).mean)
        });
        let filled: Vec<f64> = filled.iter().map(|v| v / scale).collect();
        let values = filled.as_slice();
        let observed: Vec<f64> = y.values().iter().map(|v| v / scale).collect();
        let seasons = crate::seasonal::resolve(&self.seasons, &self.season_candidates, values);
        let m = seasons.first().copied().unwrap_or(1);
        let method =
            intermittent_switch(self.method, y.values(), values, &seasons).unwrap_or(self.method);
        // A panic in a model is a bug, but one series must not take a worker
        // down with it: treat it like a failed fit.
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            models::fit_seasons(method, values, &observed, &seasons)
        }))
        .unwrap_or_else(|_| Err("the model panicked".into()));
        let (state, fallback, bands) = match attempt {
            Ok(f) => (f.state, f.note, f.bands),
            Err(why) => (
                models::fit_fallback(values, m),
                Some(format!("{} could not be fitted: {why}", self.method)),
                None,
            ),
        };
        // A model whose forecast is not finite is no model: fall back.
        let finite = catch_unwind(AssertUnwindSafe(|| {
            state.forecast(1).iter().all(|v| v.is_finite())
        }))
        .unwrap_or(false);
        let (state, fallback, bands) = if finite {
            (state, fallback, bands)
        } else {
            (
                models::fit_fallback(values, m),
                Some(format!("{} gave a non-finite forecast", self.method)),
                None,
            )
        };
        // Interpolated values are not outcomes: they are not scored.
        let missing: Vec<bool> = y.values().iter().map(|v| v.is_nan()).collect();
        let bands = match bands {
            Some(b) => b,
            None => catch_unwind(AssertUnwindSafe(|| {
                Bands::calibrate_with_gaps(&state, values, m, &missing)
            }))
            .unwrap_or_else(|_| Bands::fallback(values, m)),
        };
        // Gaps at the end were filled with forecasts, not observations: after
        // g of them, the first step forecast is the (g + 1)-th after the last
        // observed value and as uncertain.
        let bands = bands.shifted(trailing_missing(y.values()) as i64);
        let description = match method {
            switched if switched != self.method => format!(
                "{} (intermittent demand, ADI {:.2})",
                describe_with_seasons(&state, &seasons),
                intermittent::adi(y.values())
            ),
            _ => describe_with_seasons(&state, &seasons),
        };
        Ok(FittedModel {
            format_version: FORMAT_VERSION,
            method: self.method,
            description,
            fallback,
            n_obs: values.len(),
            last_value: values.last().map_or(0.0, |v| v * scale),
            bands,
            state,
            n_missing: y.n_missing(),
            scale,
            nonnegative: self
                .nonnegative
                .unwrap_or_else(|| default_nonnegative(method, y.values())),
        })
    }
}

/// `y` with its gaps filled for the models: interpolated inside (see
/// [`SeriesData::filled`]), and the gaps at its end by `forecast_prefix`, a
/// forecast from the values before them. Filled with the last value, a
/// season's worth of missing recent days would be fitted as a flat stretch
/// of data and bend the level and the season.
fn filled_for_models(
    y: &SeriesData,
    forecast_prefix: impl FnOnce(&SeriesData, Horizon) -> Option<Vec<f64>>,
) -> Vec<f64> {
    let mut filled = y.filled();
    let values = y.values();
    let trailing = trailing_missing(values);
    let observed = values.len() - trailing;
    if trailing == 0 || observed == 0 {
        return filled;
    }
    let steps = trailing.min(crate::MAX_HORIZON);
    let (Ok(prefix), Ok(horizon)) = (
        SeriesData::with_nan_gaps(values[..observed].to_vec()),
        Horizon::parse(steps as i64),
    ) else {
        return filled;
    };
    if let Some(forecast) = forecast_prefix(&prefix, horizon) {
        if forecast.len() == steps && forecast.iter().all(|v| v.is_finite()) {
            filled[observed..observed + steps].copy_from_slice(&forecast);
        }
    }
    filled
}

/// How many values at the end of `values` are missing (NaN).
fn trailing_missing(values: &[f64]) -> usize {
    values.iter().rev().take_while(|v| v.is_nan()).count()
}

/// `auto` on intermittent demand (Syntetos–Boylan: average inter-demand
/// interval ≥ 1.32, every observed value ≥ 0) uses TSB: as good as SBA on
/// stationary demand and far better when demand dies out (it smooths the
/// probability of demand every period; see BENCHMARKS.md), unless one of the given seasons is
/// significant (hourly counts that are zero every night are seasonal, not
/// intermittent). `observed` has NaN for missing values; `filled` is the
/// interpolated series. `seasons`: every season given or proposed for the
/// series (detected ones too: the seasons are resolved before this runs).
fn intermittent_switch(
    method: Method,
    observed: &[f64],
    filled: &[f64],
    seasons: &[usize],
) -> Option<Method> {
    if method != Method::Auto
        || observed.iter().any(|v| *v < 0.0)
        || intermittent::adi(observed) < intermittent::ADI_CUTOFF
        || seasons.iter().any(|&m| is_seasonal(filled, m))
    {
        return None;
    }
    Some(Method::Tsb)
}

/// The default of [`ModelSpec::nonnegative`]: counts (every observed value a
/// non-negative integer), and any series given to an intermittent-demand
/// model whose observed values are all ≥ 0, are clipped at zero.
fn default_nonnegative(method: Method, observed: &[f64]) -> bool {
    let mut values = observed.iter().filter(|v| !v.is_nan());
    if method.intermittent_kind().is_some() {
        values.all(|v| *v >= 0.0)
    } else {
        values.all(|v| *v >= 0.0 && v.fract() == 0.0)
    }
}

/// A power of two near the mean absolute observed value (1 for an all-zero
/// series): dividing by it is exact, and brings any series near 1.
fn scale_of(observed: &[f64]) -> f64 {
    let max = observed
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |a, v| a.max(v.abs()));
    if !(max > 0.0 && max.is_finite()) {
        return 1.0;
    }
    let (sum, count) = observed
        .iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, c), v| (s + v.abs() / max, c + 1));
    let mean = max * (sum / count.max(1) as f64);
    let exponent = (mean.log2().round() as i64).clamp(-1022, 1023);
    f64::from_bits(((exponent + 1023) as u64) << 52)
}

/// The chosen model and the seasons it uses: DHR and MSTL (also inside a
/// combination) name their own; any other model is followed by the season
/// it was given (or none), and whether it carries it (a season the data are
/// too short for, or that the model found no trace of, is not used).
fn describe_with_seasons(state: &State, seasons: &[usize]) -> String {
    let model = state.describe();
    match seasons {
        _ if state.names_its_seasons() => model,
        [] => format!("{model}; no season"),
        [m, ..] if state.is_seasonal() => format!("{model}; season {m}"),
        [m, ..] => format!("{model}; season {m} not used"),
    }
}

/// A fitted model: small serde state that forecasts without the training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedModel {
    pub format_version: u32,
    method: Method,
    description: String,
    fallback: Option<String>,
    n_obs: usize,
    /// Last training value: replaces any non-finite forecast step.
    last_value: f64,
    bands: Bands,
    state: State,
    /// Missing values in the training series.
    #[serde(default)]
    n_missing: usize,
    /// The state forecasts the series divided by `scale` (a power of two).
    #[serde(default = "unit_scale")]
    scale: f64,
    /// Forecasts and interval bounds are clipped at zero.
    #[serde(default)]
    nonnegative: bool,
}

fn unit_scale() -> f64 {
    1.0
}

/// The layout of [`FittedModel`] at `FORMAT_VERSION` 2, frozen: a store may
/// hold such states, and they are read into today's layout with the defaults
/// of the fields added since (no gaps, unit scale, no clipping: exactly how
/// version 2 forecast). Layout changes only append, so the fields it shares
/// with today's model decode the same way.
#[derive(Debug, Clone, Deserialize)]
pub struct FittedModelV2 {
    format_version: u32,
    method: Method,
    description: String,
    fallback: Option<String>,
    n_obs: usize,
    last_value: f64,
    bands: Bands,
    state: State,
}

impl From<FittedModelV2> for FittedModel {
    fn from(old: FittedModelV2) -> Self {
        Self {
            format_version: old.format_version,
            method: old.method,
            description: old.description,
            fallback: old.fallback,
            n_obs: old.n_obs,
            last_value: old.last_value,
            bands: old.bands,
            state: old.state,
            n_missing: 0,
            scale: 1.0,
            nonnegative: false,
        }
    }
}

/// A point forecast with prediction intervals, one entry per requested level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub mean: Vec<f64>,
    pub intervals: Vec<Interval>,
}

/// A central prediction interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Coverage in percent, e.g. 95.
    pub level: f64,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

impl FittedModel {
    /// The method that was asked for.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The model actually chosen, e.g. `ETS(M,Ad,M)`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Why a simpler model was used instead of the requested one, if it was.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    pub fn n_obs(&self) -> usize {
        self.n_obs
    }

    /// How many training values were missing (`null`).
    pub fn n_missing(&self) -> usize {
        self.n_missing
    }

    /// Whether forecasts and interval bounds are clipped at zero (asked for,
    /// or decided from the data: see [`ModelSpec::nonnegative`]).
    pub fn nonnegative(&self) -> bool {
        self.nonnegative
    }

    /// Point forecasts and, for each level, the calibrated central interval.
    /// Always finite; every interval contains the point forecast and widens
    /// (weakly) with the horizon, except where clipping at zero (see
    /// [`ModelSpec::nonnegative`]) cuts it.
    pub fn forecast(&self, horizon: Horizon, levels: &[Level]) -> Forecast {
        let h = horizon.get();
        let mut mean = catch_unwind(AssertUnwindSafe(|| self.state.forecast(h)))
            .map(|f| f.into_iter().map(|v| v * self.scale).collect())
            .unwrap_or_else(|_| vec![self.last_value; h]);
        mean.resize(h, self.last_value);
        let mut last_good = self.last_value;
        for v in mean.iter_mut() {
            if v.is_finite() {
                last_good = *v;
            } else {
                *v = last_good;
            }
        }
        let clip = |v: f64| if self.nonnegative { v.max(0.0) } else { v };
        let intervals = levels
            .iter()
            .map(|level| {
                let width = self.bands.half_widths(level.percent(), h);
                // Beyond the largest f64 (data near ±1e308): the widest
                // bound there is, not the mean.
                let bound = |m: f64, w: f64, sign: f64| {
                    let v = m + sign * w * self.scale;
                    clip(match v {
                        v if v.is_finite() => v,
                        v if v.is_nan() => m,
                        _ => sign * f64::MAX,
                    })
                };
                Interval {
                    level: level.percent(),
                    lower: mean
                        .iter()
                        .zip(&width)
                        .map(|(m, w)| bound(*m, *w, -1.0))
                        .collect(),
                    upper: mean
                        .iter()
                        .zip(&width)
                        .map(|(m, w)| bound(*m, *w, 1.0))
                        .collect(),
                }
            })
            .collect();
        for v in &mut mean {
            *v = clip(*v);
        }
        Forecast { mean, intervals }
    }
}

/// Why a fitted model could not be filtered forward over a series.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ExtendError {
    #[error("the series has {got} values, fewer than the {fitted} the model was fitted on")]
    Shorter { fitted: usize, got: usize },
    #[error(transparent)]
    Series(#[from] crate::SeriesError),
}

impl FittedModel {
    /// Filter forward: the same model with the same parameters, scale and
    /// calibrated intervals, its states recomputed over `y` (the training
    /// series followed by new observations); no optimisation, O(len).
    ///
    /// What "the same parameters" means per family (each family's
    /// `refilter`): naive, seasonal naive, drift, mean: the statistic of the
    /// longer series (they have no parameters); Naive2: the same seasonal
    /// indices, naive on the adjusted longer series; SES, ETS, theta
    /// variants, CES: the same smoothing parameters and initial states, the
    /// recursion run over the longer series; ARIMA: the same coefficients,
    /// the state filtered over the longer series; intermittent methods: the
    /// same smoothing constants (and aggregation level), rates recomputed;
    /// `auto`: every member filtered, the same weights. Approximations: MSTL
    /// decomposes the longer series again (same periods, the adjusted
    /// series' model keeps its parameters); with gaps, every family filters
    /// the filled series (interpolated inside, forecast over the gaps at the
    /// end; an ETS fit skipped the gaps instead). The intervals keep their
    /// calibration, shifted past the gaps that end the longer series (as a
    /// fit does) instead of those that ended the fitted one.
    ///
    /// The state does not carry its training data (it stays small), so the
    /// caller gives the whole longer series: see [`Self::extend`].
    pub fn filter(&self, y: &SeriesData) -> Result<FittedModel, ExtendError> {
        y.check_missing()?;
        if y.len() < self.n_obs {
            return Err(ExtendError::Shorter {
                fitted: self.n_obs,
                got: y.len(),
            });
        }
        let scaled =
            |values: Vec<f64>| -> Vec<f64> { values.iter().map(|v| v / self.scale).collect() };
        let filled = filled_for_models(y, |prefix, h| {
            let values = scaled(prefix.filled());
            let forecast = catch_unwind(AssertUnwindSafe(|| {
                self.state.refilter(&values).forecast(h.get())
            }))
            .ok()?;
            Some(forecast.iter().map(|v| v * self.scale).collect())
        });
        let values = scaled(filled);
        let state = catch_unwind(AssertUnwindSafe(|| self.state.refilter(&values)))
            .unwrap_or_else(|_| self.state.clone());
        // The bands were shifted past the gaps that ended the fitted series
        // (see `ModelSpec::fit`); shift them past those that end this one.
        let gaps_before = trailing_missing(y.values().get(..self.n_obs).unwrap_or(&[]));
        let bands = self
            .bands
            .shifted(trailing_missing(y.values()) as i64 - gaps_before as i64);
        Ok(FittedModel {
            format_version: FORMAT_VERSION,
            method: self.method,
            description: self.description.clone(),
            fallback: self.fallback.clone(),
            n_obs: values.len(),
            last_value: values.last().map_or(self.last_value, |v| v * self.scale),
            bands,
            state,
            n_missing: y.n_missing(),
            scale: self.scale,
            nonnegative: self.nonnegative,
        })
    }

    /// Filter forward by new observations: `history` is the series the
    /// model was fitted (or last filtered) on, `new` the values that follow
    /// it (NaN for a missing one). Same as [`Self::filter`] on the
    /// concatenation.
    pub fn extend(&self, history: &SeriesData, new: &[f64]) -> Result<FittedModel, ExtendError> {
        let joined = history
            .values()
            .iter()
            .chain(new)
            .map(|v| v.is_finite().then_some(*v))
            .collect();
        self.filter(&SeriesData::with_gaps(joined)?)
    }
}

/// Inverse of the standard normal CDF (Acklam's rational approximation).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_series_forecasts_the_constant() {
        let y = SeriesData::parse(vec![5.0; 30]).unwrap();
        // SBA deflates Croston by (1 − alpha/2) by design (its bias
        // correction assumes intermittent demand).
        for method in Method::ALL.into_iter().filter(|m| *m != Method::CrostonSba) {
            let fitted = ModelSpec::new(method, Some(4)).fit(&y).unwrap();
            let f = fitted.forecast(Horizon::parse(6).unwrap(), &[]);
            for v in f.mean {
                assert!((v - 5.0).abs() < 1e-6, "{method}: {v}");
            }
        }
    }

    #[test]
    fn missing_values_at_the_end_do_not_bend_the_season() {
        let pattern = [10.0, 20.0, 30.0, 40.0, 30.0, 20.0, 10.0];
        let mut values: Vec<Option<f64>> =
            pattern.iter().cycle().take(67).map(|v| Some(*v)).collect();
        values.extend([None; 3]);
        let y = SeriesData::with_gaps(values.clone()).unwrap();
        // Steps 71.. of the pattern: the gaps are steps 68–70.
        let expected: Vec<f64> = pattern.iter().cycle().skip(70).take(7).copied().collect();
        for method in [Method::Auto, Method::Arima, Method::Theta, Method::Ces] {
            let fitted = ModelSpec::new(method, Some(7)).fit(&y).unwrap();
            let f = fitted.forecast(Horizon::parse(7).unwrap(), &[]);
            for (got, want) in f.mean.iter().zip(&expected) {
                assert!((got - want).abs() < 1.0, "{method}: {:?}", f.mean);
            }
        }
        // The same through new observations that end in a gap.
        let history = SeriesData::with_gaps(values[..63].to_vec()).unwrap();
        let fitted = ModelSpec::new(Method::Auto, Some(7)).fit(&history).unwrap();
        let new: Vec<f64> = values[63..].iter().map(|v| v.unwrap_or(f64::NAN)).collect();
        let extended = fitted.extend(&history, &new).unwrap();
        let f = extended.forecast(Horizon::parse(7).unwrap(), &[]);
        for (got, want) in f.mean.iter().zip(&expected) {
            assert!((got - want).abs() < 1.0, "extended: {:?}", f.mean);
        }
    }

    #[test]
    fn intervals_after_missing_values_at_the_end_start_further_ahead() {
        // A random walk observed up to t = 189; ten more steps are missing.
        let mut rng = crate::test_support::Lcg(7);
        let mut walk = vec![100.0];
        for _ in 1..190 {
            walk.push(walk[walk.len() - 1] + rng.centred());
        }
        let (gaps, h) = (10, 12);
        let level = [Level::parse(95.0).unwrap()];
        let widths = |fitted: &FittedModel, steps: usize| -> Vec<f64> {
            let f = fitted.forecast(Horizon::parse(steps as i64).unwrap(), &level);
            let band = &f.intervals[0];
            band.upper.iter().zip(&f.mean).map(|(u, m)| u - m).collect()
        };
        let spec = ModelSpec::new(Method::Naive, None);
        let observed = SeriesData::parse(walk.clone()).unwrap();
        let plain = spec.fit(&observed).unwrap();
        let mut values: Vec<Option<f64>> = walk.iter().map(|v| Some(*v)).collect();
        values.extend([None; 10]);
        let history = SeriesData::with_gaps(values).unwrap();
        let after_gaps = spec.fit(&history).unwrap();
        // Its first step is the 11th after the last observation: about as wide
        // as the 11th step of the fit without the gaps (a slightly different
        // calibration), far wider than the first (√11 for a random walk).
        let (w_plain, w_gaps) = (widths(&plain, gaps + h), widths(&after_gaps, h));
        for k in 0..h {
            let ratio = w_gaps[k] / w_plain[gaps + k];
            assert!(
                (0.8..1.25).contains(&ratio),
                "step {k}: {w_gaps:?} {w_plain:?}"
            );
        }
        assert!(w_gaps[0] > 2.0 * w_plain[0], "{w_gaps:?} {w_plain:?}");
        // New observations after the gaps bring the widths back to the
        // calibration's own steps, exactly.
        let observed_again = after_gaps.extend(&history, &[100.0; 5]).unwrap();
        let w_filled = widths(&observed_again, gaps + h);
        for k in 0..h {
            let (a, b) = (w_filled[gaps + k], w_gaps[k]);
            assert!((a - b).abs() <= 1e-9 * b, "step {k}: {a} {b}");
        }
        // New gaps at the end of the filtered series shift them as a fit does.
        let extended = plain.extend(&observed, &[f64::NAN; 10]).unwrap();
        let w_extended = widths(&extended, h);
        for k in 0..h {
            let (a, b) = (w_extended[k], w_plain[gaps + k]);
            assert!((a - b).abs() <= 1e-9 * b, "step {k}: {a} {b}");
        }
    }

    #[test]
    fn intervals_near_the_largest_f64_stay_open() {
        // Mean ± half-width overflows here: the bounds saturate, they do not
        // collapse onto the mean.
        let y = SeriesData::parse(vec![1e308, -1e308, 1e308, 5e307, 1e308, -1e308, 1e308]).unwrap();
        let fitted = ModelSpec::new(Method::Auto, None).fit(&y).unwrap();
        let f = fitted.forecast(Horizon::parse(2).unwrap(), &[Level::parse(95.0).unwrap()]);
        for (k, m) in f.mean.iter().enumerate() {
            let (lo, hi) = (f.intervals[0].lower[k], f.intervals[0].upper[k]);
            assert!(lo.is_finite() && hi.is_finite(), "{lo} {hi}");
            assert!(lo < *m && *m < hi, "{lo} {m} {hi}");
        }
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let y = SeriesData::parse((0..40).map(|i| (i as f64 * 0.7).sin() + i as f64).collect())
            .unwrap();
        let levels = [Level::parse(80.0).unwrap(), Level::parse(95.0).unwrap()];
        for method in Method::ALL {
            let fitted = ModelSpec::new(method, Some(4)).fit(&y).unwrap();
            let bytes = postcard::to_stdvec(&fitted).unwrap();
            let back: FittedModel = postcard::from_bytes(&bytes).unwrap();
            let h = Horizon::parse(10).unwrap();
            assert_eq!(
                fitted.forecast(h, &levels),
                back.forecast(h, &levels),
                "{method}"
            );
        }
    }

    #[test]
    fn auto_model_is_small() {
        // Monthly series of 12 and 120 years. The state holds parameters and
        // a few seasons of states (four members, each with m = 12 seasonal
        // states), never the training data: its size must not grow with the
        // length of the series and stays within 2 KiB for m = 12.
        let size = |years: usize| {
            let y: Vec<f64> = (0..12 * years)
                .map(|t| 100.0 + t as f64 + 10.0 * ((t % 12) as f64 * 0.5).sin())
                .collect();
            let fitted = ModelSpec::new(Method::Auto, Some(12))
                .fit(&SeriesData::parse(y).unwrap())
                .unwrap();
            let bytes = postcard::to_stdvec(&fitted).unwrap().len();
            println!(
                "auto, {years} years: {bytes} bytes ({})",
                fitted.description()
            );
            bytes
        };
        let (short, long) = (size(12), size(120));
        assert!(short <= 2048, "{short} bytes for 144 values");
        assert!(
            long <= 2048,
            "{long} bytes for 1440 values (11520 bytes of data)"
        );
    }

    #[test]
    fn quantile_is_accurate() {
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
    }
}
