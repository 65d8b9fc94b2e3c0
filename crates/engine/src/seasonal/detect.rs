//! Finding a season in a series that comes with no season length and no
//! frequency (the original `POST /fit_model {"data": [...]}`).
//!
//! Each lag L is tested by its phase means: the series, detrended by a
//! straight line, is averaged at each phase t mod L over its last whole
//! cycles. Those means carry L − 1 degrees of freedom, at the seasonal
//! frequencies 2πj/L. Without a season, each frequency's share of their sum
//! of squares is noise of the size of the noise spectrum there; the
//! spectrum comes from an autoregression of order 0 or 1 ([`Noise`])
//! fitted to what the phase means leave.
//! Divided by it, the shares add up to a χ² with L − 1 degrees of freedom
//! however coloured the noise; its ratio to them is referred to an F distribution
//! (Paulson's normal approximation), whose denominator degrees of freedom
//! also count the uncertainty of the spectrum's shape. Measured against the
//! plain residual variance instead (an ordinary F-test), most random walks
//! and much autocorrelated noise have a "season".
//!
//! All lags up to a third of the series are searched with a Bonferroni
//! correction at [`ANY_LAG_ALPHA`]; the usual calendar periods
//! ([`CALENDAR`]) form a family of their own at [`CALENDAR_ALPHA`], since
//! data without timestamps mostly still comes from a calendar. Of the
//! significant lags the strongest per degree of freedom wins, then a
//! multiple of it is taken while it explains significantly more than the
//! lag itself (monthly data whose half-year harmonic is the strongest part
//! of a yearly pattern). A season must also be worth its estimation noise
//! ([`MIN_RATIO`]). The models test the season again for themselves (the
//! 90% test, AICc), so a rare false find costs little. Measured with the
//! `season_detection` example and on M3 without its periods (BENCHMARKS.md).

use super::MIN_CYCLES;
use std::cmp::Ordering;

/// Longest stretch of recent data looked at (every lag costs O(n)).
const WINDOW: usize = 4_000;
/// Family-wise false-detection rate over all lags.
const ANY_LAG_ALPHA: f64 = 0.01;
/// Seasons of common sampling frequencies: quarters, days of the week,
/// months, hours of the day, half-hours of the day, weeks of the year,
/// hours and half-hours of the week, days of the year.
const CALENDAR: [usize; 9] = [4, 7, 12, 24, 48, 52, 168, 336, 365];
/// Family-wise false-detection rate over the calendar periods.
const CALENDAR_ALPHA: f64 = 0.05;
/// Values the noise's autoregressive coefficient needs before it is
/// estimated at all: on short series a chance autocorrelation taken as
/// structure distorts the spectrum the test is measured against.
const POINTS_FOR_AR: usize = 20;
/// Least ratio of a season's phase-means sum of squares to the noise it
/// would carry: each phase mean estimated from c cycles adds noise of
/// variance σ²/c to the forecasts, which pays off when the season's own
/// variance s² exceeds it, i.e. when the expected ratio 1 + c·s²/σ² is
/// above 2. It only binds on long series, where a slight change of a
/// season's shape over the years is significant at some multiple of it.
const MIN_RATIO: f64 = 2.0;

/// One season found in the data alone, if any (see the module docs).
pub fn detect(y: &[f64]) -> Option<usize> {
    let y = &y[y.len().saturating_sub(WINDOW)..];
    let max_lag = y.len() / MIN_CYCLES;
    if max_lag < 2 || y.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let series = Detrended::new(y);
    let limits = Limits::new(max_lag);
    // Of the significant lags, the strongest per degree of freedom: a
    // multiple of a season is as significant as the season itself (more,
    // by its z, when the season is strong) but spreads it over more phases.
    let strongest = |lags: &mut dyn Iterator<Item = usize>, base: usize| {
        lags.filter_map(|l| Some((l, series.phase_test(l, base)?)))
            .filter(|(l, test)| test.z > limits.at(*l))
            .max_by(stronger)
            .map(|(l, _)| l)
    };
    let mut best = strongest(&mut (2..=max_lag), 1)?;
    while let Some(next) = strongest(&mut (2..=max_lag / best).map(|k| k * best), best) {
        best = next;
    }
    Some(best)
}

/// Orders (lag, test) by the test's ratio; of two equal ones the shorter
/// lag is greater (a perfectly periodic series fits every multiple of its
/// season exactly).
fn stronger(a: &(usize, PhaseTest), b: &(usize, PhaseTest)) -> Ordering {
    a.1.ratio.total_cmp(&b.1.ratio).then(b.0.cmp(&a.0))
}

/// The outcome of one lag's test.
struct PhaseTest {
    /// Sum of squares of the phase means over the noise's expected share.
    ratio: f64,
    /// Its normal deviate under the null of no season.
    z: f64,
}

/// The normal deviates a lag's test must pass.
struct Limits {
    any: f64,
    calendar: f64,
}

impl Limits {
    fn new(max_lag: usize) -> Self {
        let z = |alpha: f64, tests: usize| {
            crate::model::normal_quantile(1.0 - alpha / tests.max(1) as f64)
        };
        let calendar_tests = CALENDAR.iter().filter(|&&c| c <= max_lag).count();
        Self {
            any: z(ANY_LAG_ALPHA, max_lag - 1),
            calendar: z(CALENDAR_ALPHA, calendar_tests),
        }
    }

    fn at(&self, lag: usize) -> f64 {
        if CALENDAR.contains(&lag) {
            self.calendar.min(self.any)
        } else {
            self.any
        }
    }
}

/// The series minus its least-squares straight line, with running sums of
/// its lagged products (so that each lag's residual autocovariances cost
/// O(lag), not O(n)).
struct Detrended {
    x: Vec<f64>,
    /// `products[k][i]` = Σ_{t<i} x_t·x_{t+k}, for k = 0 and 1.
    products: [Vec<f64>; 2],
}

impl Detrended {
    fn new(y: &[f64]) -> Self {
        let n = y.len() as f64;
        let t_mean = (n - 1.0) / 2.0;
        let y_mean = y.iter().sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (t, v) in y.iter().enumerate() {
            let dt = t as f64 - t_mean;
            sxy += dt * (v - y_mean);
            sxx += dt * dt;
        }
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let x: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(t, v)| v - y_mean - slope * (t as f64 - t_mean))
            .collect();
        let products = [0, 1].map(|k| {
            let mut run = Vec::with_capacity(x.len() + 1);
            let mut acc = 0.0;
            run.push(acc);
            for t in 0..x.len() {
                if t + k < x.len() {
                    acc += x[t] * x[t + k];
                }
                run.push(acc);
            }
            run
        });
        Self { x, products }
    }

    /// The test of season `lag` beyond its divisor `base` (1: beyond
    /// nothing) on the last whole cycles (ratio and z +∞ when the phase
    /// means leave nothing); `None` with too few cycles, or when the season
    /// would not be worth estimating ([`MIN_RATIO`]).
    fn phase_test(&self, lag: usize, base: usize) -> Option<PhaseTest> {
        let cycles = self.x.len() / lag;
        if cycles < 2 {
            return None;
        }
        let start = self.x.len() - cycles * lag;
        let x = &self.x[start..];
        let n = x.len();
        let (means, ss_lag) = phase_means(x, lag);
        let step = lag / base;
        let autocov = self.residual_autocov(start, &means);
        let ss_rest = autocov[0] * n as f64;
        if ss_rest <= 1e-20 * (ss_rest.max(0.0) + ss_lag) {
            // The phase means are the series: a perfectly periodic pattern.
            let beyond_base = weighted_power(&means, base, cycles, 0.0);
            return (beyond_base > 1e-12 * ss_lag).then_some(PhaseTest {
                ratio: f64::INFINITY,
                z: f64::INFINITY,
            });
        }
        let noise = Noise::fit(autocov, n);
        // The phase means took `lag` degrees of freedom from the residuals,
        // the line's slope one more.
        let taken = lag + 1;
        let dof_rest = n as f64 - taken as f64 - noise.order() as f64;
        let dof = (lag - base) as f64;
        if dof_rest < 1.0 || dof == 0.0 {
            return None;
        }
        let noise_var = noise.innovation_var * n as f64 / (n - taken) as f64;
        // Each frequency's sum of squares over the noise spectrum there:
        // without a season χ² with `dof` degrees of freedom, however
        // coloured the noise.
        let whitened = weighted_power(&means, base, cycles, noise.phi) / noise_var;
        let ratio = whitened / dof;
        if !ratio.is_finite() || ratio < MIN_RATIO {
            return None;
        }
        // The spectrum is estimated too: the variance of its log (averaged
        // over the tested frequencies) through φ̂ (Yule–Walker: σ²/(γ₀·n))
        // lowers the denominator's degrees of freedom.
        let shape_var = if noise.order() == 0 {
            0.0
        } else {
            let slope = noise.mean_log_spectrum_slope(lag, step);
            slope * slope * noise.innovation_var / (autocov[0] * n as f64)
        };
        let dof_noise = 1.0 / (1.0 / dof_rest + shape_var / 2.0);
        let z = f_to_z(ratio, dof, dof_noise);
        z.is_finite().then_some(PhaseTest { ratio, z })
    }

    /// Autocovariances at lags 0 and 1 of `x[start..] − means[t % lag]`,
    /// from the running products and the phase means.
    fn residual_autocov(&self, start: usize, means: &[f64]) -> [f64; 2] {
        let x = &self.x[start..];
        let (n, lag) = (x.len(), means.len());
        let cycles = (n / lag) as f64;
        let m = |t: usize| means[t % lag];
        [0, 1].map(|k| {
            let run = &self.products[k];
            // Σ_{t<n−k} x_t·x_{t+k} over the window.
            let xx = run[start + n - k] - run[start];
            // Σ over whole cycles of m_t·m_{t+k}, which each cross term
            // equals up to the k points at the window's edges.
            let mm: f64 = (0..lag).map(|p| means[p] * m(p + k)).sum::<f64>() * cycles;
            let x_ahead: f64 = (n - k..n).map(|t| x[t] * m(t + k)).sum();
            let x_behind: f64 = (0..k).map(|t| x[t] * m(t + lag * k - k)).sum();
            let m_edge: f64 = (n - k..n).map(|t| m(t) * m(t + k)).sum();
            // Σ x_t m_{t+k} = mm − x_ahead; Σ m_t x_{t+k} = mm − x_behind;
            // Σ m_t m_{t+k} = mm − m_edge.
            (xx - mm + x_ahead + x_behind - m_edge) / n as f64
        })
    }
}

/// The noise the phase means leave: white, or an autoregression of order 1
/// (chosen by BIC, Yule–Walker), whose spectrum σ²/|1 − φe^{−iω}|² is
/// monotone in the frequency. From order 2 on it could peak inside (0, π)
/// and swallow a season whose amplitude changes (a multiplicative season on
/// a trend leaves its growing amplitude in the residuals: with orders up to
/// 5, such a series without noise had "no season").
struct Noise {
    phi: f64,
    innovation_var: f64,
}

impl Noise {
    /// From the autocovariances at lags 0 and 1 of `n` residuals.
    fn fit(autocov: [f64; 2], n: usize) -> Self {
        let white = Self {
            phi: 0.0,
            innovation_var: autocov[0],
        };
        if n < POINTS_FOR_AR {
            return white;
        }
        let phi = autocov[1] / autocov[0];
        let ar = Self {
            phi,
            innovation_var: autocov[0] * (1.0 - phi * phi),
        };
        let n = n as f64;
        let ar_is_better = ar.innovation_var > 0.0
            && n * ar.innovation_var.ln() + n.ln() < n * white.innovation_var.ln();
        if ar_is_better {
            ar
        } else {
            white
        }
    }

    fn order(&self) -> usize {
        usize::from(self.phi != 0.0)
    }

    /// |1 − φe^{−iω}|² (the spectrum is the innovation variance over it).
    fn gain(&self, cos_w: f64) -> f64 {
        1.0 - 2.0 * self.phi * cos_w + self.phi * self.phi
    }

    /// d log S(ω) / dφ averaged over the frequencies 2πj/lag that are not
    /// multiples of 2π/`step` (a divisor's).
    fn mean_log_spectrum_slope(&self, lag: usize, step: usize) -> f64 {
        let slopes: Vec<f64> = (1..lag)
            .filter(|j| j % step != 0)
            .map(|j| {
                let cos_w = (std::f64::consts::TAU * j as f64 / lag as f64).cos();
                (2.0 * cos_w - 2.0 * self.phi) / self.gain(cos_w)
            })
            .collect();
        slopes.iter().sum::<f64>() / slopes.len().max(1) as f64
    }
}

/// Σ over the frequencies 2πj/lag of `means` (one per phase of `lag`,
/// averaged over `cycles`) that `base` does not carry, of their sum of
/// squares times |1 − φe^{−iω}|². Computed without a Fourier transform:
/// |1 − φe^{−iω}|² = 1 + φ² − 2φ·cos ω, and the power-weighted Σ cos ω_j is
/// the circular autocovariance of the means at lag 1 (Wiener–Khinchin on
/// one cycle); the base's frequencies are those of the means folded onto
/// `base` phases.
fn weighted_power(means: &[f64], base: usize, cycles: usize, phi: f64) -> f64 {
    let lag = means.len();
    let step = lag / base;
    let folded: Vec<f64> = (0..base)
        .map(|q| (q..lag).step_by(base).map(|p| means[p]).sum::<f64>() / step as f64)
        .collect();
    let circular = |d: usize| {
        let r: f64 = (0..lag).map(|p| means[p] * means[(p + d) % lag]).sum();
        let r_base: f64 = (0..base).map(|q| folded[q] * folded[(q + d) % base]).sum();
        cycles as f64 * (r - step as f64 * r_base)
    };
    let lag_one = if phi == 0.0 { 0.0 } else { circular(1) };
    (1.0 + phi * phi) * circular(0) - 2.0 * phi * lag_one
}

/// The mean at each phase of `x` (a whole number of cycles of `lag`) and
/// the between-phases sum of squares.
fn phase_means(x: &[f64], lag: usize) -> (Vec<f64>, f64) {
    let cycles = (x.len() / lag) as f64;
    let mut means = vec![0.0; lag];
    for (t, v) in x.iter().enumerate() {
        means[t % lag] += v;
    }
    means.iter_mut().for_each(|m| *m /= cycles);
    let grand = means.iter().sum::<f64>() / lag as f64;
    let ss = means.iter().map(|m| cycles * (m - grand).powi(2)).sum();
    (means, ss)
}

/// Normal deviate of an F(d1, d2) value (Paulson 1942).
fn f_to_z(f: f64, d1: f64, d2: f64) -> f64 {
    let (a, b) = (2.0 / (9.0 * d1), 2.0 / (9.0 * d2));
    let c = f.cbrt();
    ((1.0 - b) * c - (1.0 - a)) / (b * c * c + a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic uniform numbers in [0, 1) (SplitMix64: unlike a plain
    /// LCG, neighbouring seeds give unrelated series).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (((z ^ (z >> 31)) >> 11) as f64) / (1u64 << 53) as f64
        }

        /// Mean 0, variance 1.
        fn noise(&mut self) -> f64 {
            (self.next() - 0.5) * 12f64.sqrt()
        }
    }

    fn count(series: impl Fn(&mut Rng) -> Vec<f64>, want: Option<usize>) -> usize {
        (0..100u64)
            .filter(|seed| detect(&series(&mut Rng(*seed))) == want)
            .count()
    }

    #[test]
    fn finds_a_noisy_season_and_not_its_multiples() {
        // Seasonal variance 1/2 against noise variance 1: the old
        // autocorrelation search of the differenced series found 12 in at
        // most a third of such series.
        for n in [60, 120, 500] {
            let found = count(
                |r| {
                    (0..n)
                        .map(|t| (std::f64::consts::TAU * t as f64 / 12.0).sin() + r.noise())
                        .collect()
                },
                Some(12),
            );
            assert!(found >= 60, "{n} points: 12 found in {found} of 100");
        }
        // A strong season, with a trend: 12; a multiple only by the chance
        // of the calendar periods' test (24 and 48 at 5%/6).
        let strong = count(
            |r| {
                (0..240)
                    .map(|t| {
                        0.05 * t as f64
                            + 3.0 * (std::f64::consts::TAU * t as f64 / 12.0).sin()
                            + r.noise()
                    })
                    .collect()
            },
            Some(12),
        );
        assert!(strong >= 95, "12 found in {strong} of 100");
    }

    #[test]
    fn a_yearly_pattern_led_by_its_half_year_harmonic_is_yearly() {
        let found = count(
            |r| {
                (0..120)
                    .map(|t| {
                        let w = std::f64::consts::TAU * t as f64 / 12.0;
                        0.8 * w.cos() + 2.0 * (2.0 * w).cos() + 0.5 * r.noise()
                    })
                    .collect()
            },
            Some(12),
        );
        assert!(found >= 90, "12 found in {found} of 100");
    }

    #[test]
    fn rarely_finds_a_season_in_noise() {
        // 1% of false finds over all lags and 5% over the calendar periods:
        // about 6 in 100, up to twice that on short series, where the test's
        // approximations are rougher. Autocorrelated noise and random walks
        // included: measured against the plain residual variance (an
        // ordinary F-test) most random walks of 500 points have a "season".
        let white = |n: usize| move |r: &mut Rng| (0..n).map(|_| r.noise()).collect::<Vec<_>>();
        let walk = |n: usize| {
            move |r: &mut Rng| {
                let mut level = 0.0;
                (0..n)
                    .map(|_| {
                        level += r.noise();
                        level
                    })
                    .collect::<Vec<_>>()
            }
        };
        let ar1 = |n: usize| {
            move |r: &mut Rng| {
                let mut v = 0.0;
                (0..n)
                    .map(|_| {
                        v = 0.7 * v + r.noise();
                        v
                    })
                    .collect::<Vec<_>>()
            }
        };
        let intermittent = |n: usize| {
            move |r: &mut Rng| {
                (0..n)
                    .map(|_| {
                        if r.next() < 0.3 {
                            (1.0 + 5.0 * r.next()).floor()
                        } else {
                            0.0
                        }
                    })
                    .collect::<Vec<_>>()
            }
        };
        for n in [36, 60, 200] {
            let found = [
                100 - count(white(n), None),
                100 - count(walk(n), None),
                100 - count(ar1(n), None),
                100 - count(intermittent(n), None),
            ];
            assert!(
                found.iter().all(|&f| f <= 15),
                "{n} points: seasons found in white noise, a random walk, AR(1) and \
                 intermittent counts: {found:?} of 100 each"
            );
        }
    }

    #[test]
    fn finds_a_multiplicative_season_on_a_trend_without_noise() {
        // What the phase means leave is the season's growing amplitude: a
        // periodic residual an autoregression of order 2 would absorb.
        for amplitude in [0.05, 0.3] {
            let y: Vec<f64> = (0..200)
                .map(|t| {
                    let season = (std::f64::consts::TAU * t as f64 / 7.0).sin();
                    (100.0 + 3.0 * t as f64) * (1.0 + amplitude * season)
                })
                .collect();
            assert_eq!(detect(&y), Some(7), "amplitude {amplitude}");
        }
    }

    #[test]
    fn residual_autocovariances_match_the_direct_sums() {
        let mut r = Rng(3);
        let y: Vec<f64> = (0..103).map(|t| t as f64 * 0.1 + r.noise()).collect();
        let series = Detrended::new(&y);
        for lag in [2, 5, 7, 12, 30] {
            let cycles = y.len() / lag;
            let start = y.len() - cycles * lag;
            let x = &series.x[start..];
            let (means, _) = phase_means(x, lag);
            let rest: Vec<f64> = x
                .iter()
                .enumerate()
                .map(|(t, v)| v - means[t % lag])
                .collect();
            let fast = series.residual_autocov(start, &means);
            for (k, got) in fast.iter().enumerate() {
                let want = rest[k..].iter().zip(&rest).map(|(a, b)| a * b).sum::<f64>()
                    / rest.len() as f64;
                assert!(
                    (got - want).abs() < 1e-9,
                    "lag {lag}, k {k}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn weighted_power_matches_a_fourier_transform() {
        let mut r = Rng(8);
        let means: Vec<f64> = (0..12).map(|_| r.noise()).collect();
        let noise = Noise {
            phi: 0.6,
            innovation_var: 1.0,
        };
        for base in [1, 2, 3, 4, 6] {
            let step = 12 / base;
            let want: f64 = (1..12)
                .filter(|j| j % step != 0)
                .map(|j| {
                    let w = std::f64::consts::TAU * j as f64 / 12.0;
                    let (re, im) = means
                        .iter()
                        .enumerate()
                        .fold((0.0, 0.0), |(re, im), (p, m)| {
                            (re + m * (w * p as f64).cos(), im - m * (w * p as f64).sin())
                        });
                    let power = 5.0 * (re * re + im * im) / 12.0;
                    power * noise.gain(w.cos())
                })
                .sum();
            let got = weighted_power(&means, base, 5, noise.phi);
            assert!(
                (got - want).abs() < 1e-9 * want,
                "base {base}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn a_constant_or_too_short_series_has_no_season() {
        assert_eq!(detect(&[5.0; 100]), None);
        assert_eq!(detect(&[1.0, 2.0, 3.0, 1.0, 2.0]), None);
        assert_eq!(detect(&[]), None);
    }
}
