//! Seasonality helpers shared by the model families: autocorrelation, the 90%
//! seasonality test of the M competitions, classical decomposition, and the
//! choice of the seasons a fit uses ([`resolve`]: given, tested candidates,
//! or detected from the data).

use serde::{Deserialize, Serialize};

mod detect;
pub use detect::detect;

/// Sample autocorrelations r_1..=r_max_lag.
pub fn acf(y: &[f64], max_lag: usize) -> Vec<f64> {
    let n = y.len();
    let mean = y.iter().sum::<f64>() / n.max(1) as f64;
    let denom: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    (1..=max_lag)
        .map(|k| {
            if denom <= 0.0 || k >= n {
                return 0.0;
            }
            let num: f64 = (k..n).map(|t| (y[t] - mean) * (y[t - k] - mean)).sum();
            num / denom
        })
        .collect()
}

/// The 90% autocorrelation test at lag `m`:
/// |r_m| > 1.645·sqrt((1 + 2·Σ_{k<m} r_k²)/n), applied only when n ≥ 3m.
pub fn is_seasonal(y: &[f64], m: usize) -> bool {
    let n = y.len();
    if m < 2 || n < 3 * m {
        return false;
    }
    let r = acf(y, m);
    let sum_sq: f64 = r[..m - 1].iter().map(|v| v * v).sum();
    let limit = 1.645 * ((1.0 + 2.0 * sum_sq) / n as f64).sqrt();
    r[m - 1].abs() > limit
}

/// Fewest cycles a candidate or detected season needs in the data.
const MIN_CYCLES: usize = 3;

/// The seasons a fit uses, ascending, each ≥ 2 (empty: none).
///
/// Seasons the client gave win (`[1]` = explicitly none). Without them, each
/// candidate (e.g. from the frequency) is kept when the data cover
/// [`MIN_CYCLES`] cycles and [`candidate_supported`] says so. Without
/// candidates, or when none is kept, [`detect`] looks for one season in the
/// data.
pub fn resolve(given: &[usize], candidates: &[usize], y: &[f64]) -> Vec<usize> {
    let mut out: Vec<usize> = if !given.is_empty() {
        given.iter().copied().filter(|&m| m >= 2).collect()
    } else if !candidates.is_empty() {
        // Shortest first; each longer one is tested on the series without
        // the seasons already kept (a daily pattern repeats weekly too).
        let mut sorted: Vec<usize> = candidates.iter().copied().filter(|&m| m >= 2).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut rest = y.to_vec();
        let mut kept = Vec::new();
        for m in sorted {
            if candidate_supported(&rest, m) {
                if let Some((idx, _)) = additive_season(&rest, m) {
                    for (t, v) in rest.iter_mut().enumerate() {
                        *v -= idx[t % m];
                    }
                }
                kept.push(m);
            }
        }
        if kept.is_empty() {
            // The frequency's usual seasons are a guess about the data; when
            // it has none of them, it is searched as without a frequency.
            kept.extend(detect(y));
        }
        kept
    } else {
        detect(y).into_iter().collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Seasonal strength above which a candidate is kept even when the
/// autocorrelation test is inconclusive (Wang, Smith & Hyndman 2006; 0.64 is
/// the usual "strongly seasonal" threshold).
const STRONG_SEASON: f64 = 0.64;

/// Does the data support season `m`? Either the one-sided 90%
/// autocorrelation test of the M competitions at lag m on the series
/// detrended by a centred moving average of order m
/// (r_m > 1.645·sqrt((1 + 2·Σ_{k<m} r_k²)/n)) with a season worth its
/// estimation noise, or, since that test cannot pass for a long season seen
/// over few cycles, a strong seasonal strength (see [`additive_season`]) ≥
/// [`STRONG_SEASON`].
///
/// Worth its noise: each of the m seasonal indices, the mean of c cycles,
/// carries noise of variance σ²/c into every forecast, which the season
/// pays back when its own variance s² is at least that, i.e. when its
/// strength s²/(s² + σ²) ≥ 1/(c + 1) (the same bar as the detection's
/// `MIN_RATIO`). The test alone passes trifles on long series: after the
/// daily pattern of a year of hourly temperatures is removed, what is left
/// of it (its amplitude follows the seasons of the year) repeats at lag 168
/// too, so a "weekly" season of strength 0.001 passed over 52 cycles.
pub fn candidate_supported(y: &[f64], m: usize) -> bool {
    if m < 2 || y.len() < MIN_CYCLES * m {
        return false;
    }
    // One moving average serves the strength and the autocorrelation test.
    let detrended = detrend(y, m);
    let Some((_, strength)) = season_of_detrended(&detrended, m) else {
        return false;
    };
    if strength >= STRONG_SEASON {
        return true;
    }
    let cycles = (y.len() / m) as f64;
    if strength < 1.0 / (cycles + 1.0) {
        return false;
    }
    let values: Vec<f64> = detrended.iter().map(|p| p.1).collect();
    let n = values.len();
    if n < 2 * m {
        return false;
    }
    let r = acf(&values, m);
    let sum_sq: f64 = r[..m - 1].iter().map(|v| v * v).sum();
    r[m - 1] > 1.645 * ((1.0 + 2.0 * sum_sq) / n as f64).sqrt()
}

/// Additive seasonal indices of season `m` (`indices[t % m]`, mean 0) from
/// the series detrended by a centred moving average, and the seasonal
/// strength 1 − Var(R)/Var(S + R) in [0, 1] (Wang, Smith & Hyndman 2006).
/// `None` below two cycles.
pub fn additive_season(y: &[f64], m: usize) -> Option<(Vec<f64>, f64)> {
    if m < 2 || y.len() < 2 * m {
        return None;
    }
    season_of_detrended(&detrend(y, m), m)
}

/// [`additive_season`] from the series detrended by [`detrend`].
fn season_of_detrended(detrended: &[(usize, f64)], m: usize) -> Option<(Vec<f64>, f64)> {
    let (mut sums, mut counts) = (vec![0.0; m], vec![0usize; m]);
    for &(t, d) in detrended {
        sums[t % m] += d;
        counts[t % m] += 1;
    }
    let (mut idx, mean) = slot_means(&sums, &counts)?;
    idx.iter_mut().for_each(|v| *v -= mean);
    let var = |it: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = it.collect();
        let mu = v.iter().sum::<f64>() / v.len().max(1) as f64;
        v.iter().map(|x| (x - mu).powi(2)).sum::<f64>()
    };
    let total = var(&mut detrended.iter().map(|p| p.1));
    let rem = var(&mut detrended.iter().map(|&(t, d)| d - idx[t % m]));
    let strength = if total > 0.0 && total.is_finite() {
        (1.0 - rem / total).clamp(0.0, 1.0)
    } else {
        0.0
    };
    Some((idx, strength))
}

/// The mean of each seasonal slot (`sums[i] / counts[i]`) and the mean of
/// those means; `None` when a slot has no observation.
fn slot_means(sums: &[f64], counts: &[usize]) -> Option<(Vec<f64>, f64)> {
    if counts.contains(&0) {
        return None;
    }
    let means: Vec<f64> = sums
        .iter()
        .zip(counts)
        .map(|(s, c)| s / *c as f64)
        .collect();
    let mean = means.iter().sum::<f64>() / means.len() as f64;
    Some((means, mean))
}

/// `y` minus its centred moving average of order m (2×m when m is even),
/// over the points where that average exists.
fn detrend(y: &[f64], m: usize) -> Vec<(usize, f64)> {
    centred_moving_average(y, m)
        .iter()
        .zip(y)
        .enumerate()
        .filter_map(|(t, (c, v))| c.map(|c| (t, v - c)))
        .collect()
}

/// How seasonal indices combine with the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeasonKind {
    Multiplicative,
    Additive,
}

/// Seasonal indices of a classical decomposition; `indices[i]` applies to
/// time points t with t % m == i (t counted from the start of the series).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seasonality {
    pub kind: SeasonKind,
    pub indices: Vec<f64>,
}

impl Seasonality {
    /// Classical decomposition with a centred moving average: multiplicative
    /// (indices normalised to mean 1) when every value is positive, additive
    /// (indices summing to 0) otherwise. `None` when the series is shorter than
    /// two seasons or `m < 2`.
    pub fn classical(y: &[f64], m: usize) -> Option<Self> {
        let n = y.len();
        if m < 2 || n < 2 * m {
            return None;
        }
        let kind = if y.iter().all(|v| *v > 0.0) {
            SeasonKind::Multiplicative
        } else {
            SeasonKind::Additive
        };
        let cma = centred_moving_average(y, m);
        let mut sums = vec![0.0; m];
        let mut counts = vec![0usize; m];
        for (t, c) in cma.iter().enumerate() {
            if let Some(c) = c {
                let ratio = match kind {
                    SeasonKind::Multiplicative => y[t] / c,
                    SeasonKind::Additive => y[t] - c,
                };
                if ratio.is_finite() {
                    sums[t % m] += ratio;
                    counts[t % m] += 1;
                }
            }
        }
        let (mut indices, mean) = slot_means(&sums, &counts)?;
        match kind {
            SeasonKind::Multiplicative => {
                if mean <= 0.0 || !mean.is_finite() {
                    return None;
                }
                indices.iter_mut().for_each(|v| *v /= mean);
                if indices.iter().any(|v| *v <= 0.0) {
                    return None;
                }
            }
            SeasonKind::Additive => indices.iter_mut().for_each(|v| *v -= mean),
        }
        Some(Self { kind, indices })
    }

    /// The index that applies at time point `t`.
    pub fn index_at(&self, t: usize) -> f64 {
        self.indices[t % self.indices.len()]
    }

    /// Removes the seasonal component from `y` (starting at time point 0).
    pub fn adjust(&self, y: &[f64]) -> Vec<f64> {
        y.iter()
            .enumerate()
            .map(|(t, v)| match self.kind {
                SeasonKind::Multiplicative => v / self.index_at(t),
                SeasonKind::Additive => v - self.index_at(t),
            })
            .collect()
    }

    /// Puts the seasonal component back on forecasts that start at time
    /// point `start` (the length of the training series).
    pub fn restore(&self, forecast: &mut [f64], start: usize) {
        for (i, v) in forecast.iter_mut().enumerate() {
            let s = self.index_at(start + i);
            match self.kind {
                SeasonKind::Multiplicative => *v *= s,
                SeasonKind::Additive => *v += s,
            }
        }
    }
}

/// Centred moving average of order m (2×m when m is even); `None` at the ends.
fn centred_moving_average(y: &[f64], m: usize) -> Vec<Option<f64>> {
    let n = y.len();
    let mut out = vec![None; n];
    if m % 2 == 1 {
        let half = m / 2;
        for t in half..n.saturating_sub(half) {
            out[t] = Some(y[t - half..=t + half].iter().sum::<f64>() / m as f64);
        }
    } else {
        let half = m / 2;
        for t in half..n.saturating_sub(half) {
            let inner: f64 = y[t + 1 - half..t + half].iter().sum();
            out[t] = Some((0.5 * y[t - half] + inner + 0.5 * y[t + half]) / m as f64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Lcg;

    #[test]
    fn detects_and_removes_a_multiplicative_season() {
        let pattern = [0.8, 1.0, 1.3, 0.9];
        let y: Vec<f64> = (0..40)
            .map(|t| (100.0 + t as f64) * pattern[t % 4])
            .collect();
        assert!(is_seasonal(&y, 4));
        let s = Seasonality::classical(&y, 4).unwrap();
        assert_eq!(s.kind, SeasonKind::Multiplicative);
        let mean = pattern.iter().sum::<f64>() / 4.0;
        for (got, want) in s.indices.iter().zip(pattern) {
            assert!((got - want / mean).abs() < 0.01, "{got} vs {want}");
        }
        let adjusted = s.adjust(&y);
        let mut back = adjusted.clone();
        s.restore(&mut back, 0);
        for (a, b) in back.iter().zip(&y) {
            assert!((a - b).abs() < 1e-9);
        }
    }

    #[test]
    fn needs_three_seasons() {
        let pattern = [0.8, 1.0, 1.3, 0.9];
        let y: Vec<f64> = (0..11).map(|t| 100.0 * pattern[t % 4]).collect();
        assert!(!is_seasonal(&y, 4));
        assert!(is_seasonal(&[y.clone(), y].concat(), 4));
    }

    #[test]
    fn detects_twelve_in_five_cycles_and_nothing_in_noise() {
        let pattern = [
            3.0, 5.0, 9.0, 4.0, 1.0, -2.0, -6.0, -4.0, 0.0, 2.0, -3.0, 1.0,
        ];
        let y: Vec<f64> = (0..60)
            .map(|t| 50.0 + 0.3 * t as f64 + pattern[t % 12])
            .collect();
        assert_eq!(detect(&y), Some(12));
        assert_eq!(resolve(&[], &[], &y), vec![12]);
        // Three cycles exactly are enough; fewer are not.
        assert_eq!(detect(&y[..36]), Some(12));
        assert_ne!(detect(&y[..35]), Some(12));
        // A smooth wave (one per cycle), without noise.
        let wave = [
            5.0, 7.0, 9.0, 12.0, 15.0, 14.0, 11.0, 8.0, 6.0, 4.0, 3.0, 4.0,
        ];
        let smooth: Vec<f64> = (0..60).map(|t| 50.0 + wave[t % 12]).collect();
        assert_eq!(detect(&smooth), Some(12));
        // Deterministic pseudo-random white noise (LCG): no season.
        let mut rng = Lcg(99);
        let noise: Vec<f64> = (0..500).map(|_| rng.uniform()).collect();
        assert_eq!(detect(&noise), None);
        assert!(resolve(&[], &[7, 12, 24], &noise).is_empty());
        // A long season over only three cycles of noise is not kept either.
        let long_noise: Vec<f64> = (0..3 * 365).map(|_| rng.uniform()).collect();
        assert!(!candidate_supported(&long_noise, 365));
    }

    #[test]
    fn a_multiple_of_a_kept_season_must_be_worth_its_noise() {
        // A year of hourly temperatures: a daily cycle whose amplitude
        // follows the year, and weather that lasts (AR(1) noise). No week.
        let mut rng = Lcg(17);
        let mut weather = 0.0;
        let n = 365 * 24;
        let mut y = Vec::with_capacity(n);
        for t in 0..n {
            let e = rng.centred();
            weather = 0.97 * weather + e;
            let year = (2.0 * std::f64::consts::PI * t as f64 / (365.0 * 24.0)).sin();
            let day = (2.0 * std::f64::consts::PI * t as f64 / 24.0).sin();
            y.push(15.0 + 8.0 * year + (5.0 + 3.0 * year) * day + weather);
        }
        assert_eq!(resolve(&[], &[24, 168], &y), vec![24]);
        // Lower on the weekend: the week is kept.
        let weekly: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(t, v)| if (t / 24) % 7 >= 5 { v - 2.0 } else { *v })
            .collect();
        assert_eq!(resolve(&[], &[24, 168], &weekly), vec![24, 168]);
    }

    #[test]
    fn candidates_are_tested_and_given_seasons_win() {
        let mut rng = Lcg(5);
        let y: Vec<f64> = (0..24 * 30)
            .map(|t| {
                let e = rng.centred();
                10.0 + (2.0 * std::f64::consts::PI * t as f64 / 24.0).sin() + 0.3 * e
            })
            .collect();
        // 24 is in the data; 168 has too few cycles; 7 is not in the data.
        assert_eq!(resolve(&[], &[7, 24, 168], &y), vec![24]);
        assert_eq!(resolve(&[168, 24], &[7], &y), vec![24, 168]);
        assert!(resolve(&[1], &[24], &y).is_empty());
        // None of the candidates in the data: searched as without them.
        assert_eq!(resolve(&[], &[7], &y), vec![24]);
    }
}
