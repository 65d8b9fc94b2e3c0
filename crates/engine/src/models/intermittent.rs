//! Intermittent demand: series with many zeros (spare parts, slow sellers,
//! arrivals per hour at night), where smoothing the raw values gives poor
//! forecasts and a forecast of "demand per period" is what is wanted.
//!
//! - Croston (1972): exponential smoothing of the non-zero demand sizes and,
//!   separately, of the intervals between them; forecast size / interval.
//!   Classic: both smoothed with alpha = 0.1.
//! - SBA (Syntetos & Boylan 2005): Croston times (1 − alpha/2), which removes
//!   the bias of the ratio of two smoothed quantities.
//! - Optimised Croston: each of the two smoothings gets its own alpha,
//!   chosen in [0.1, 0.3] by least squares of its one-step errors.
//! - TSB (Teunter, Syntetos & Babai 2011): smooths the demand size when
//!   demand occurs and the *probability* of demand every period, so the
//!   forecast decays when demand stops (obsolescence); both alphas chosen by
//!   least squares of the one-step errors.
//! - ADIDA (Nikolopoulos et al. 2011): sums non-overlapping buckets of k
//!   periods (k = mean interval between demands), so the aggregate is far
//!   less intermittent, forecasts it with SES and spreads the forecast back
//!   over the k periods.
//! - IMAPA (Petropoulos & Kourentzes 2015): ADIDA at every aggregation
//!   level 1..=k, forecasts averaged.
//!
//! Every forecast is flat (a demand rate per period). The fitted state keeps
//! the parameters and the rate; `refilter` recomputes the rate on another
//! series with the same parameters (interval calibration).

use super::baselines::{run_ses, Ses};
use crate::optim::NelderMead;
use serde::{Deserialize, Serialize};

/// Smoothing constant of classic Croston and SBA (Croston 1972).
const CLASSIC_ALPHA: f64 = 0.1;
/// Range searched for optimised smoothing constants.
const ALPHA_LO: f64 = 0.1;
const ALPHA_SPAN: f64 = 0.2;
/// Ranges of TSB's size and probability smoothing constants.
const TSB_BOUNDS: ([f64; 2], [f64; 2]) = ([0.01, 0.01], [0.5, 0.5]);
/// Average inter-demand interval from which a series counts as intermittent
/// (Syntetos, Boylan & Croston 2005).
pub const ADI_CUTOFF: f64 = 1.32;

/// Which intermittent-demand method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Croston,
    Sba,
    CrostonOptimized,
    Tsb,
    Adida,
    Imapa,
}

/// A fitted intermittent-demand model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intermittent {
    pub kind: Kind,
    /// Croston family: [size alpha, interval alpha]; TSB: [size alpha,
    /// probability alpha]; ADIDA / IMAPA: one SES alpha per aggregation level.
    pub alphas: Vec<f64>,
    /// Aggregation levels (ADIDA: one, IMAPA: 1..=k); empty otherwise.
    pub levels: Vec<usize>,
    /// The forecast demand per period.
    pub rate: f64,
}

/// Average inter-demand interval (ADI) of the observed values: observations
/// per non-zero one; infinite when there is no demand at all. NaN (missing)
/// values are ignored.
pub fn adi(y: &[f64]) -> f64 {
    let observed = y.iter().filter(|v| !v.is_nan()).count();
    let demands = y.iter().filter(|v| !v.is_nan() && **v != 0.0).count();
    if demands == 0 {
        f64::INFINITY
    } else {
        observed as f64 / demands as f64
    }
}

/// Non-zero demand sizes and the intervals before each (the first interval
/// counts from the start of the series).
fn sizes_and_intervals(y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut sizes = Vec::new();
    let mut intervals = Vec::new();
    let mut since = 0usize;
    for &v in y {
        since += 1;
        if v != 0.0 {
            sizes.push(v);
            intervals.push(since as f64);
            since = 0;
        }
    }
    (sizes, intervals)
}

/// Final SES level of `x` from its first value.
fn ses_level(x: &[f64], alpha: f64) -> f64 {
    match x.first() {
        Some(&first) => run_ses(x, alpha, first).0,
        None => 0.0,
    }
}

/// SES alpha in [0.1, 0.3] by least squares (0.1 when too short to choose).
fn best_alpha(x: &[f64]) -> f64 {
    if x.len() < 3 {
        CLASSIC_ALPHA
    } else {
        Ses::fit_within(x, ALPHA_LO, ALPHA_SPAN).alpha
    }
}

/// Mean interval between demands, rounded, at least 1: ADIDA's bucket size.
fn aggregation_level(y: &[f64]) -> usize {
    let (_, intervals) = sizes_and_intervals(y);
    if intervals.is_empty() {
        return 1;
    }
    let mean = intervals.iter().sum::<f64>() / intervals.len() as f64;
    (mean.round() as usize).clamp(1, (y.len() / 2).max(1))
}

/// Sums of non-overlapping buckets of `k` values ending at the last one (a
/// partial bucket at the start is dropped; a series shorter than `k` is one
/// bucket scaled up to `k` periods).
fn buckets(y: &[f64], k: usize) -> Vec<f64> {
    let k = k.max(1);
    if y.len() < k {
        let n = y.len().max(1) as f64;
        return vec![y.iter().sum::<f64>() * k as f64 / n];
    }
    y[y.len() % k..]
        .chunks_exact(k)
        .map(|c| c.iter().sum())
        .collect()
}

/// TSB's one-step squared errors and final (size, probability).
fn run_tsb(y: &[f64], a_size: f64, a_prob: f64) -> (f64, f64, f64) {
    let (sizes, _) = sizes_and_intervals(y);
    if sizes.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    // Initial states: the mean demand size and the share of periods with
    // demand, as Teunter et al. suggest.
    let mut z = sizes.iter().sum::<f64>() / sizes.len() as f64;
    let mut p = sizes.len() as f64 / y.len() as f64;
    let mut sse = 0.0;
    for &v in y {
        let e = v - p * z;
        sse += e * e;
        if v != 0.0 {
            z += a_size * (v - z);
            p += a_prob * (1.0 - p);
        } else {
            p -= a_prob * p;
        }
    }
    (sse, z, p)
}

impl Intermittent {
    /// Fits `kind` to `y` (values ≥ 0 expected; zeros are "no demand").
    pub fn fit(y: &[f64], kind: Kind) -> Self {
        let (sizes, intervals) = sizes_and_intervals(y);
        let (alphas, levels) = match kind {
            Kind::Croston | Kind::Sba => (vec![CLASSIC_ALPHA, CLASSIC_ALPHA], vec![]),
            Kind::CrostonOptimized => (vec![best_alpha(&sizes), best_alpha(&intervals)], vec![]),
            Kind::Tsb => {
                let start = [0.1, 0.05];
                let best = NelderMead::default().minimize(
                    |a| run_tsb(y, a[0], a[1]).0,
                    &start,
                    &TSB_BOUNDS.0,
                    &TSB_BOUNDS.1,
                );
                let ok = best.x.iter().all(|v| v.is_finite());
                (if ok { best.x } else { start.to_vec() }, vec![])
            }
            Kind::Adida => {
                let k = aggregation_level(y);
                (vec![best_alpha(&buckets(y, k))], vec![k])
            }
            Kind::Imapa => {
                let levels: Vec<usize> = (1..=aggregation_level(y)).collect();
                let alphas = levels.iter().map(|&k| best_alpha(&buckets(y, k))).collect();
                (alphas, levels)
            }
        };
        let mut out = Self {
            kind,
            alphas,
            levels,
            rate: 0.0,
        };
        out.rate = out.rate_of(y);
        out
    }

    /// The demand rate of `y` under this model's parameters.
    fn rate_of(&self, y: &[f64]) -> f64 {
        let alpha = |i: usize| self.alphas.get(i).copied().unwrap_or(CLASSIC_ALPHA);
        let rate = match self.kind {
            Kind::Croston | Kind::Sba | Kind::CrostonOptimized => {
                let (sizes, intervals) = sizes_and_intervals(y);
                if sizes.is_empty() {
                    0.0
                } else {
                    let z = ses_level(&sizes, alpha(0));
                    let p = ses_level(&intervals, alpha(1)).max(1.0);
                    let bias = if self.kind == Kind::Sba {
                        1.0 - alpha(1) / 2.0
                    } else {
                        1.0
                    };
                    bias * z / p
                }
            }
            Kind::Tsb => {
                let (_, z, p) = run_tsb(y, alpha(0), alpha(1));
                z * p
            }
            Kind::Adida | Kind::Imapa => {
                let per_level: Vec<f64> = self
                    .levels
                    .iter()
                    .enumerate()
                    .map(|(i, &k)| ses_level(&buckets(y, k), alpha(i)) / k.max(1) as f64)
                    .collect();
                per_level.iter().sum::<f64>() / per_level.len().max(1) as f64
            }
        };
        if rate.is_finite() {
            rate
        } else {
            0.0
        }
    }

    pub fn forecast(&self, h: usize) -> Vec<f64> {
        vec![self.rate; h]
    }

    /// Same parameters, rate recomputed over `y`.
    pub fn refilter(&self, y: &[f64]) -> Self {
        let mut out = self.clone();
        out.rate = self.rate_of(y);
        out
    }

    pub fn describe(&self) -> String {
        let a = |i: usize| self.alphas.get(i).copied().unwrap_or(f64::NAN);
        match self.kind {
            Kind::Croston => "Croston".into(),
            Kind::Sba => "Croston-SBA".into(),
            Kind::CrostonOptimized => {
                format!(
                    "Croston(alpha_size={:.3}, alpha_interval={:.3})",
                    a(0),
                    a(1)
                )
            }
            Kind::Tsb => format!("TSB(alpha_size={:.3}, alpha_prob={:.3})", a(0), a(1)),
            Kind::Adida => format!("ADIDA(k={})", self.levels.first().copied().unwrap_or(1)),
            Kind::Imapa => format!("IMAPA(levels=1..{})", self.levels.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Demand of 6 every third period: sizes 6, intervals 3 (the first too).
    fn regular() -> Vec<f64> {
        (0..30)
            .map(|t| if t % 3 == 2 { 6.0 } else { 0.0 })
            .collect()
    }

    #[test]
    fn croston_on_regular_demand_is_size_over_interval() {
        let y = regular();
        assert!((Intermittent::fit(&y, Kind::Croston).rate - 2.0).abs() < 1e-12);
        // SBA: 2 × (1 − 0.1/2).
        assert!((Intermittent::fit(&y, Kind::Sba).rate - 1.9).abs() < 1e-12);
        assert!((Intermittent::fit(&y, Kind::CrostonOptimized).rate - 2.0).abs() < 1e-12);
        // ADIDA: buckets of 3 each hold 6.
        let adida = Intermittent::fit(&y, Kind::Adida);
        assert_eq!(adida.levels, vec![3]);
        assert!((adida.rate - 2.0).abs() < 1e-12);
    }

    #[test]
    fn croston_hand_checked() {
        // Demands 4 at t=1 (interval 2), 8 at t=2 (1), 2 at t=5 (3).
        let y = [0.0, 4.0, 8.0, 0.0, 0.0, 2.0];
        let a = 0.1;
        let z = (4.0 + a * (8.0 - 4.0)) * (1.0 - a) + a * 2.0;
        let p = (2.0 + a * (1.0 - 2.0)) * (1.0 - a) + a * 3.0;
        let f = Intermittent::fit(&y, Kind::Croston);
        assert!((f.rate - z / p).abs() < 1e-12, "{} vs {}", f.rate, z / p);
        assert_eq!(f.forecast(3), vec![f.rate; 3]);
    }

    #[test]
    fn tsb_decays_after_demand_stops_and_croston_does_not() {
        let mut y = regular();
        y.extend(vec![0.0; 30]);
        let tsb = Intermittent::fit(&y, Kind::Tsb);
        let croston = Intermittent::fit(&y, Kind::Croston);
        assert!(tsb.rate < 0.5 * croston.rate, "{tsb:?} {croston:?}");
        assert!(tsb.rate >= 0.0);
    }

    #[test]
    fn imapa_averages_levels_and_all_zero_forecasts_zero() {
        let y = regular();
        let imapa = Intermittent::fit(&y, Kind::Imapa);
        assert_eq!(imapa.levels, vec![1, 2, 3]);
        assert!(imapa.rate > 0.0 && imapa.rate < 6.0);
        for kind in [
            Kind::Croston,
            Kind::Sba,
            Kind::CrostonOptimized,
            Kind::Tsb,
            Kind::Adida,
            Kind::Imapa,
        ] {
            let f = Intermittent::fit(&[0.0; 20], kind);
            assert_eq!(f.forecast(4), vec![0.0; 4], "{kind:?}");
            let one = Intermittent::fit(&[3.0], kind);
            assert!(one.rate.is_finite() && one.rate >= 0.0, "{kind:?}");
            assert_eq!(f.refilter(&y).kind, kind);
        }
    }

    #[test]
    fn adi_counts_observed_values_only() {
        assert_eq!(adi(&[0.0, 1.0, f64::NAN, 0.0, 2.0]), 2.0);
        assert!(adi(&[0.0, 0.0]).is_infinite());
    }
}
