//! Heuristic initial states (Hyndman et al. 2008, §2.6.1): seasonal indices
//! from a classical decomposition of the first few seasons, then level and
//! trend from a straight line fitted to the first seasonally adjusted values.

use super::{SeasonType, TrendType};

/// Initial level, trend (0 or 1 when absent) and season, `season[k]` applying at time `k`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Init {
    pub level: f64,
    pub trend: f64,
    pub season: Vec<f64>,
}

/// Least-squares line through `(1, y[0]), (2, y[1]), ...`: (intercept at 0, slope).
pub(super) fn line(y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    if y.len() < 2 {
        return (y.first().copied().unwrap_or(0.0), 0.0);
    }
    let mx = (n + 1.0) / 2.0;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in y.iter().enumerate() {
        let dx = (i + 1) as f64 - mx;
        sxy += dx * (v - my);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (my - slope * mx, slope)
}

/// Seasonal indices for the first season (multiplicative: mean 1, additive: sum 0).
fn seasonal_indices(y: &[f64], m: usize, mult: bool) -> Vec<f64> {
    let n = y.len();
    let mut sums = vec![0.0; m];
    let mut counts = vec![0usize; m];
    if n >= 2 * m {
        // Centred moving average (2×m when m is even) as the trend, with a
        // running sum so that long seasons stay O(n).
        let half = m / 2;
        let odd = m % 2 == 1;
        // Odd m: sum of y[t-half..=t+half]; even m: sum of y[t-half+1..t+half].
        let mut window: f64 = if odd {
            y[..m].iter().sum()
        } else {
            y[1..m].iter().sum()
        };
        for t in half..n - half {
            if t > half {
                if odd {
                    window += y[t + half] - y[t - half - 1];
                } else {
                    window += y[t + half - 1] - y[t - half];
                }
            }
            let trend = if odd {
                window / m as f64
            } else {
                (0.5 * y[t - half] + window + 0.5 * y[t + half]) / m as f64
            };
            let r = if mult { y[t] / trend } else { y[t] - trend };
            if r.is_finite() {
                sums[t % m] += r;
                counts[t % m] += 1;
            }
        }
    }
    if counts.contains(&0) {
        // Too short for a moving average: detrend with a straight line.
        sums.iter_mut().for_each(|v| *v = 0.0);
        counts.iter_mut().for_each(|v| *v = 0);
        let (a, b) = line(y);
        for (t, v) in y.iter().enumerate() {
            let trend = a + b * (t + 1) as f64;
            let r = if mult { v / trend } else { v - trend };
            if r.is_finite() {
                sums[t % m] += r;
                counts[t % m] += 1;
            }
        }
    }
    let neutral = if mult { 1.0 } else { 0.0 };
    let mut s: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { neutral })
        .collect();
    if mult {
        s.iter_mut().for_each(|v| *v = v.max(1e-2));
        let mean = s.iter().sum::<f64>() / m as f64;
        if mean > 0.0 && mean.is_finite() {
            s.iter_mut().for_each(|v| *v /= mean);
        } else {
            s.iter_mut().for_each(|v| *v = 1.0);
        }
    } else {
        let mean = s.iter().sum::<f64>() / m as f64;
        s.iter_mut().for_each(|v| *v -= mean);
    }
    s
}

/// Heuristic initial states for a model with these components.
pub(super) fn heuristic(y: &[f64], m: usize, trend: TrendType, season: SeasonType) -> Init {
    let n = y.len();
    let (s, ysa): (Vec<f64>, Vec<f64>) = match season {
        SeasonType::None => (Vec::new(), y.to_vec()),
        SeasonType::Additive | SeasonType::Multiplicative => {
            let mult = season == SeasonType::Multiplicative;
            let s = seasonal_indices(y, m, mult);
            let ysa = y
                .iter()
                .enumerate()
                .map(|(t, v)| if mult { v / s[t % m] } else { v - s[t % m] })
                .collect();
            (s, ysa)
        }
    };
    let maxn = n.min(10.max(2 * m)).max(1.min(n));
    let head = &ysa[..maxn];
    let (level, b) = match trend {
        TrendType::None => (head.iter().sum::<f64>() / maxn.max(1) as f64, 0.0),
        TrendType::Additive => line(head),
        TrendType::Multiplicative => {
            let (a, slope) = line(head);
            let (l1, l2) = (a + slope, a + 2.0 * slope);
            if l1 > 0.0 && l2 > 0.0 {
                let g = (l2 / l1).clamp(0.5, 2.0);
                (l1 / g, g)
            } else {
                let first = head.first().copied().unwrap_or(1.0).max(1e-3);
                let g = head
                    .get(1)
                    .map_or(1.0, |v| (v / first).clamp(0.5, 2.0))
                    .max(1e-3);
                (first / g, g)
            }
        }
    };
    let level = if level.is_finite() { level } else { 0.0 };
    let b = if b.is_finite() {
        b
    } else if trend == TrendType::Multiplicative {
        1.0
    } else {
        0.0
    };
    Init {
        level,
        trend: b,
        season: s,
    }
}
