//! MSTL: several seasons at once (Bandara, Hyndman & Bergmeir 2021).
//!
//! The seasonal components are extracted one after another by STL
//! ([`super::stl`]), shortest season first, and the whole round is iterated
//! (twice with several seasons) so that each component is estimated from a
//! series cleaned of the others. Forecasts: each seasonal component repeats
//! its last cycle; the seasonally adjusted series (trend + remainder) is
//! forecast by one of the engine's non-seasonal models. The fitted state keeps
//! only the last cycle of each component and the adjusted model, never the
//! data, so it also carries seasons far too long for a seasonal state-space
//! model (365 for daily data, 8,766 for hourly data with a yearly cycle).

use super::{stl, State};
use serde::{Deserialize, Serialize};

/// Seasonal window of the first (shortest) season; each next season's window
/// is 4 wider, the usual MSTL defaults.
const FIRST_SEASONAL_SPAN: usize = 11;
/// Fewest cycles of a short season for `auto` to try MSTL on it (its
/// seasonal window spans this many cycles).
pub const MIN_CYCLES: usize = FIRST_SEASONAL_SPAN;
/// Fewest points for `auto` to try MSTL on one short season (enough for its
/// trend window and a calibrated comparison).
pub const MIN_POINTS: usize = 200;
/// Rounds over all seasons when there are several.
const ITERATIONS: usize = 2;
/// The adjusted-series model is fitted on at most this many recent points
/// (it forgets the distant past anyway; keeps long series fast).
pub const ADJUSTED_WINDOW: usize = 5_000;

/// A fitted multi-season model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mstl {
    /// Season lengths, ascending.
    pub periods: Vec<usize>,
    /// Last cycle of each seasonal component, oldest first (same order as
    /// `periods`): `cycles[j][i]` is the component i steps into any future
    /// cycle, counted from the end of the training series.
    pub cycles: Vec<Vec<f64>>,
    /// The model of the seasonally adjusted series.
    pub adjusted: Box<State>,
}

/// The seasonal components of `y` and the adjusted series, for `periods`
/// (ascending, each ≤ n/2).
pub struct Parts {
    pub seasonal: Vec<Vec<f64>>,
    pub adjusted: Vec<f64>,
}

/// Seasons of `seasons` that `n` observations can carry (two full cycles),
/// ascending and without repeats or 1s.
pub fn usable_periods(seasons: &[usize], n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = seasons
        .iter()
        .copied()
        .filter(|&m| m >= 2 && 2 * m <= n)
        .collect();
    p.sort_unstable();
    p.dedup();
    p
}

/// The MSTL decomposition of `y` for `periods` (ascending, usable).
pub fn decompose(y: &[f64], periods: &[usize]) -> Parts {
    let k = periods.len();
    let mut seasonal = vec![vec![0.0; y.len()]; k];
    let mut adjusted = y.to_vec();
    let rounds = if k > 1 { ITERATIONS } else { 1 };
    for _ in 0..rounds {
        for (j, &m) in periods.iter().enumerate() {
            for (a, s) in adjusted.iter_mut().zip(&seasonal[j]) {
                *a += s;
            }
            let d = stl::decompose(&adjusted, m, FIRST_SEASONAL_SPAN + 4 * j);
            seasonal[j] = d.seasonal;
            for (a, s) in adjusted.iter_mut().zip(&seasonal[j]) {
                *a -= s;
            }
        }
    }
    Parts { seasonal, adjusted }
}

/// Fits the adjusted-series model (non-seasonal).
pub type AdjustedFitter<'a> = dyn Fn(&[f64]) -> Result<State, String> + 'a;

impl Mstl {
    /// Decomposes `y` with every usable season of `seasons` and fits the
    /// adjusted series with `fit_adjusted`. `Err` when no season is usable.
    pub fn fit(
        y: &[f64],
        seasons: &[usize],
        fit_adjusted: &AdjustedFitter<'_>,
    ) -> Result<Self, String> {
        let periods = usable_periods(seasons, y.len());
        if periods.is_empty() {
            return Err(format!(
                "{} observations carry none of the seasons {seasons:?} (two cycles needed)",
                y.len()
            ));
        }
        let parts = decompose(y, &periods);
        let adjusted = fit_adjusted(recent(&parts.adjusted))?;
        Ok(Self {
            cycles: last_cycles(&parts.seasonal, &periods),
            periods,
            adjusted: Box::new(adjusted),
        })
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        let mut f = self.adjusted.forecast(h);
        f.resize(h, f.last().copied().unwrap_or(0.0));
        for cycle in &self.cycles {
            if cycle.is_empty() {
                continue;
            }
            for (i, v) in f.iter_mut().enumerate() {
                *v += cycle[i % cycle.len()];
            }
        }
        f
    }

    pub fn describe(&self) -> String {
        let p: Vec<String> = self.periods.iter().map(usize::to_string).collect();
        format!(
            "MSTL(seasons {}; adjusted: {})",
            p.join(","),
            self.adjusted.describe()
        )
    }

    /// Same seasons and adjusted model, decomposition and states recomputed
    /// over `y`. A season `y` is too short for (two cycles) is left out of
    /// the forecast, as a fit to `y` would leave it: the stored cycle's phase
    /// belongs to the end of the series it was fitted to, not to `y`'s (a
    /// calibration origin), and `y`'s adjusted series still carries that
    /// season.
    pub fn refilter(&self, y: &[f64]) -> Self {
        let periods = usable_periods(&self.periods, y.len());
        let parts = decompose(y, &periods);
        let fresh = last_cycles(&parts.seasonal, &periods);
        let cycles = self
            .periods
            .iter()
            .map(|m| match periods.iter().position(|p| p == m) {
                Some(j) => fresh[j].clone(),
                None => Vec::new(),
            })
            .collect();
        Self {
            periods: self.periods.clone(),
            cycles,
            adjusted: Box::new(self.adjusted.refilter(recent(&parts.adjusted))),
        }
    }
}

fn recent(y: &[f64]) -> &[f64] {
    &y[y.len().saturating_sub(ADJUSTED_WINDOW)..]
}

fn last_cycles(seasonal: &[Vec<f64>], periods: &[usize]) -> Vec<Vec<f64>> {
    seasonal
        .iter()
        .zip(periods)
        .map(|(s, &m)| s[s.len().saturating_sub(m)..].to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::baselines::Naive;

    fn two_seasons(n: usize) -> Vec<f64> {
        (0..n)
            .map(|t| {
                let tf = t as f64;
                50.0 + 0.01 * tf
                    + 4.0 * (2.0 * std::f64::consts::PI * tf / 24.0).sin()
                    + 2.5 * (2.0 * std::f64::consts::PI * tf / 168.0).cos()
            })
            .collect()
    }

    #[test]
    fn reproduces_a_pure_two_season_signal() {
        let all = two_seasons(168 * 12 + 48);
        let (train, test) = all.split_at(168 * 12);
        let fit = Mstl::fit(train, &[168, 24], &|y| {
            crate::models::ets::Ets::fit(y, 1).map(State::Ets)
        })
        .unwrap();
        assert_eq!(fit.periods, vec![24, 168]);
        let f = fit.forecast(test.len());
        for (a, b) in f.iter().zip(test) {
            assert!((a - b).abs() < 0.25, "{a} vs {b}");
        }
    }

    #[test]
    fn a_refilter_leaves_out_a_season_its_data_cannot_carry() {
        let y = two_seasons(168 * 6);
        let fit = Mstl::fit(&y, &[24, 168], &|y| Ok(State::Naive(Naive::fit(y)))).unwrap();
        assert_eq!(fit.cycles[1].len(), 168);
        // 300 points (a calibration origin early in a short series): the
        // week is not estimated again and its stored cycle, whose phase is
        // the whole series' end, is not used either.
        let early = fit.refilter(&y[..300]);
        assert_eq!(early.cycles[0].len(), 24);
        assert!(early.cycles[1].is_empty());
        assert!(early.forecast(48).iter().all(|v| v.is_finite()));
        assert_eq!(fit.refilter(&y[..400]).cycles[1].len(), 168);
    }

    #[test]
    fn drops_seasons_the_data_cannot_carry() {
        let y = two_seasons(300);
        let fit = Mstl::fit(&y, &[24, 168], &|y| Ok(State::Naive(Naive::fit(y)))).unwrap();
        assert_eq!(fit.periods, vec![24]);
        assert!(Mstl::fit(&y[..40], &[24], &|y| Ok(State::Naive(Naive::fit(y)))).is_err());
    }
}
