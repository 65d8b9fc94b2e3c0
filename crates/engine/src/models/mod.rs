//! Model families, each in its own module, and the [`State`] enum that holds
//! any fitted one.

pub mod arima;
pub mod auto;
pub mod baselines;
pub mod ces;
pub mod dhr;
pub mod ets;
pub mod intermittent;
pub mod mstl;
pub mod stl;
pub mod theta;

use crate::Method;
use serde::{Deserialize, Serialize};
use theta::ThetaVariant;

/// The fitted state of any model family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum State {
    Naive(baselines::Naive),
    SeasonalNaive(baselines::SeasonalNaive),
    Drift(baselines::Drift),
    Mean(baselines::Mean),
    Naive2(baselines::Naive2),
    Ses(baselines::Ses),
    Ets(ets::Ets),
    Arima(arima::Arima),
    Theta(theta::Theta),
    Ces(ces::Ces),
    Combination(auto::Combination),
    Intermittent(intermittent::Intermittent),
    Mstl(mstl::Mstl),
    Dhr(dhr::Dhr),
}

impl State {
    /// Point forecasts 1..=h steps ahead.
    pub fn forecast(&self, h: usize) -> Vec<f64> {
        match self {
            State::Naive(s) => s.forecast(h),
            State::SeasonalNaive(s) => s.forecast(h),
            State::Drift(s) => s.forecast(h),
            State::Mean(s) => s.forecast(h),
            State::Naive2(s) => s.forecast(h),
            State::Ses(s) => s.forecast(h),
            State::Ets(s) => s.forecast(h),
            State::Arima(s) => s.forecast(h),
            State::Theta(s) => s.forecast(h),
            State::Ces(s) => s.forecast(h),
            State::Combination(s) => s.forecast(h),
            State::Intermittent(s) => s.forecast(h),
            State::Mstl(s) => s.forecast(h),
            State::Dhr(s) => s.forecast(h),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            State::Naive(_) => "Naive".into(),
            State::SeasonalNaive(s) => format!("SeasonalNaive(m={})", s.m),
            State::Drift(_) => "Drift".into(),
            State::Mean(_) => "Mean".into(),
            State::Naive2(s) => match s.season {
                Some(_) => format!("Naive2(m={})", s.m),
                None => "Naive2".into(),
            },
            State::Ses(s) => format!("SES(alpha={:.3})", s.alpha),
            State::Ets(s) => s.describe(),
            State::Arima(s) => s.describe(),
            State::Theta(s) => s.describe(),
            State::Ces(s) => s.describe(),
            State::Combination(s) => s.describe(),
            State::Intermittent(s) => s.describe(),
            State::Mstl(s) => s.describe(),
            State::Dhr(s) => s.describe(),
        }
    }

    /// Whether the model carries a season: a seasonal component of its own,
    /// or a decomposition it forecasts the adjusted series of.
    pub fn is_seasonal(&self) -> bool {
        match self {
            State::Naive(_)
            | State::Drift(_)
            | State::Mean(_)
            | State::Ses(_)
            | State::Intermittent(_) => false,
            // On input shorter than a season the stored cycle is shorter.
            State::SeasonalNaive(s) => s.m > 1 && s.last_season.len() == s.m,
            State::Naive2(s) => s.season.is_some(),
            State::Ets(s) => s.is_seasonal(),
            State::Arima(s) => s.is_seasonal(),
            State::Theta(s) => s.season.is_some(),
            State::Ces(s) => s.season != ces::CesSeason::None || s.adjustment.is_some(),
            State::Combination(s) => s.members.iter().any(State::is_seasonal),
            State::Mstl(_) | State::Dhr(_) => true,
        }
    }

    /// Whether the description already names the seasons the model uses
    /// (MSTL and DHR do, also inside a combination).
    pub fn names_its_seasons(&self) -> bool {
        match self {
            State::Mstl(_) | State::Dhr(_) => true,
            State::Combination(s) => s.members.iter().any(State::names_its_seasons),
            _ => false,
        }
    }

    /// Points a re-filter needs to estimate every season afresh: two cycles
    /// of MSTL's longest season (0 when the usual window does).
    pub(crate) fn refilter_span(&self) -> usize {
        match self {
            State::Mstl(s) => s.periods.iter().max().map_or(0, |p| 2 * p),
            State::Combination(s) => s
                .members
                .iter()
                .map(State::refilter_span)
                .max()
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// Same model and parameters, state recomputed over `y` (no optimisation).
    pub fn refilter(&self, y: &[f64]) -> State {
        match self {
            State::Naive(s) => State::Naive(s.refilter(y)),
            State::SeasonalNaive(s) => State::SeasonalNaive(s.refilter(y)),
            State::Drift(s) => State::Drift(s.refilter(y)),
            State::Mean(s) => State::Mean(s.refilter(y)),
            State::Naive2(s) => State::Naive2(s.refilter(y)),
            State::Ses(s) => State::Ses(s.refilter(y)),
            State::Ets(s) => State::Ets(s.refilter(y)),
            State::Arima(s) => State::Arima(s.refilter(y)),
            State::Theta(s) => State::Theta(s.refilter(y)),
            State::Ces(s) => State::Ces(s.refilter(y)),
            State::Combination(s) => State::Combination(s.refilter(y)),
            State::Intermittent(s) => State::Intermittent(s.refilter(y)),
            State::Mstl(s) => State::Mstl(s.refilter(y)),
            State::Dhr(s) => State::Dhr(s.refilter(y)),
        }
    }
}

/// The band a sane forecast stays in over as many steps as the series has:
/// the observed values' range widened by twice itself on each side,
/// [min − 2·range, max + 2·range] (the bench's `range` column counts
/// forecasts outside it). Extrapolated for as long as the history, a trend
/// the data carry moves the forecast by about one range; one that leaves
/// the band came from a few values, such as a spike at the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Plausible {
    lo: f64,
    hi: f64,
    horizon: usize,
}

impl Plausible {
    /// The band of `y` (NaN where a value is missing); `None` for a series
    /// without spread, which gives no scale to judge a forecast by.
    pub(crate) fn of(y: &[f64]) -> Option<Self> {
        let (min, max) = y
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let range = max - min;
        (range > 0.0 && range.is_finite()).then_some(Self {
            lo: min - 2.0 * range,
            hi: max + 2.0 * range,
            horizon: y.len().min(crate::MAX_HORIZON),
        })
    }

    /// Steps to check: the length of the series, at most [`crate::MAX_HORIZON`].
    pub(crate) fn horizon(&self) -> usize {
        self.horizon
    }

    /// Whether every value of `forecast` lies in the band.
    pub(crate) fn holds(&self, forecast: &[f64]) -> bool {
        forecast.iter().all(|v| *v >= self.lo && *v <= self.hi)
    }
}

/// Fits one method: the state and, when only part of it could be fitted (a
/// combination missing members), a note saying so. `Err` carries the reason
/// nothing could be fitted.
pub(crate) fn fit(method: Method, y: &[f64], m: usize) -> Result<(State, Option<String>), String> {
    let plain = |r: Result<State, String>| r.map(|s| (s, None));
    match method {
        Method::Auto => auto::Combination::fit(y, m).map(|(c, note)| (State::Combination(c), note)),
        Method::Naive => plain(Ok(State::Naive(baselines::Naive::fit(y)))),
        // Less than one cycle has no last season to repeat.
        Method::SeasonalNaive if y.len() < m => Err(format!(
            "{} values are less than one season of {m}",
            y.len()
        )),
        Method::SeasonalNaive => plain(Ok(State::SeasonalNaive(baselines::SeasonalNaive::fit(
            y, m,
        )))),
        Method::Drift => plain(Ok(State::Drift(baselines::Drift::fit(y)))),
        Method::Mean => plain(Ok(State::Mean(baselines::Mean::fit(y)))),
        Method::Naive2 => plain(Ok(State::Naive2(baselines::Naive2::fit(y, m)))),
        Method::Ses => plain(Ok(State::Ses(baselines::Ses::fit(y)))),
        Method::Ets => plain(ets::Ets::fit(y, m).map(State::Ets)),
        Method::Arima => plain(arima::Arima::fit(y, m).map(State::Arima)),
        Method::Theta => plain(theta::Theta::fit(y, m, ThetaVariant::Standard).map(State::Theta)),
        Method::OptimizedTheta => {
            plain(theta::Theta::fit(y, m, ThetaVariant::Optimized).map(State::Theta))
        }
        Method::DynamicTheta => {
            plain(theta::Theta::fit(y, m, ThetaVariant::Dynamic).map(State::Theta))
        }
        Method::Ces => plain(ces::Ces::fit(y, m).map(State::Ces)),
        Method::Dhr => plain(dhr::Dhr::fit(y, &[m]).map(State::Dhr)),
        Method::Croston
        | Method::CrostonSba
        | Method::CrostonOptimized
        | Method::Tsb
        | Method::Adida
        | Method::Imapa => match method.intermittent_kind() {
            Some(kind) => plain(Ok(State::Intermittent(intermittent::Intermittent::fit(
                y, kind,
            )))),
            None => Err(format!("{method} is not an intermittent-demand method")),
        },
    }
}

/// [`fit`] on a series with gaps: `filled` has them interpolated, `observed`
/// has NaN there. ETS skips the missing observations in its filter (no
/// update, no likelihood term), also as a member of `auto`'s combination;
/// the other families fit `filled`.
pub(crate) fn fit_with_gaps(
    method: Method,
    filled: &[f64],
    observed: &[f64],
    m: usize,
) -> Result<(State, Option<String>), String> {
    match method {
        Method::Ets if observed.iter().any(|v| v.is_nan()) => {
            ets::Ets::fit(observed, m).map(|s| (State::Ets(s), None))
        }
        Method::Auto if observed.iter().any(|v| v.is_nan()) => {
            auto::Combination::fit_with_gaps(filled, observed, m)
                .map(|(c, note)| (State::Combination(c), note))
        }
        _ => fit(method, filled, m),
    }
}

/// The model used when the requested one cannot be fitted: Naive2 (naive on
/// the seasonally adjusted series), which never fails.
pub(crate) fn fit_fallback(y: &[f64], m: usize) -> State {
    State::Naive2(baselines::Naive2::fit(y, m))
}

/// Longest season the single-season families take directly; longer ones, and
/// several seasons, go through MSTL (a seasonal state of hundreds of values
/// is slow to fit and poorly estimated).
pub const MAX_DIRECT_SEASON: usize = 24;

/// A fit for a set of seasons: the state, a note (see [`fit`]) and, when the
/// choice of the model already calibrated its intervals, those.
pub(crate) struct SeasonalFit {
    pub state: State,
    pub note: Option<String>,
    pub bands: Option<crate::intervals::Bands>,
}

/// Fits `method` with the seasons `seasons` (ascending, each ≥ 2; empty =
/// none). One short season goes to the method itself; several or long ones to
/// MSTL with the method's non-seasonal form on the adjusted series (`auto`
/// chooses between that and its single-season combination, see
/// [`auto::fit_seasons`]). Methods without a seasonal form of their own
/// (naive, drift, ...) keep their usual behaviour with the shortest season.
///
/// `observed` is `y` with NaN where a value was missing (see
/// [`fit_with_gaps`]).
pub(crate) fn fit_seasons(
    method: Method,
    y: &[f64],
    observed: &[f64],
    seasons: &[usize],
) -> Result<SeasonalFit, String> {
    let shortest = seasons.first().copied().unwrap_or(1);
    let direct = |m: usize| {
        fit_with_gaps(method, y, observed, m).map(|(state, note)| SeasonalFit {
            state,
            note,
            bands: None,
        })
    };
    // `auto` also weighs MSTL against its combination for one short season
    // when the series is long enough for MSTL's seasonal window.
    let mstl_worth_trying = method == Method::Auto
        && seasons.len() == 1
        && y.len() >= mstl::MIN_POINTS
        && y.len() >= mstl::MIN_CYCLES * shortest;
    let simple = seasons.len() <= 1 && shortest <= MAX_DIRECT_SEASON && !mstl_worth_trying;
    let mstl_capable = matches!(
        method,
        Method::Auto
            | Method::Ets
            | Method::Arima
            | Method::Theta
            | Method::OptimizedTheta
            | Method::DynamicTheta
            | Method::Ces
    );
    // Harmonic regression carries any number and length of seasons itself.
    if method == Method::Dhr {
        return dhr::Dhr::fit(y, seasons).map(|d| SeasonalFit {
            state: State::Dhr(d),
            note: None,
            bands: None,
        });
    }
    if simple || !mstl_capable {
        return direct(shortest);
    }
    if method == Method::Auto {
        return auto::fit_seasons(y, observed, seasons);
    }
    match mstl::Mstl::fit(y, seasons, &move |adj| fit(method, adj, 1).map(|(s, _)| s)) {
        Ok(m) => Ok(SeasonalFit {
            state: State::Mstl(m),
            note: None,
            bands: None,
        }),
        // Too short for any of the seasons as MSTL: the method itself.
        Err(_) => direct(shortest),
    }
}
