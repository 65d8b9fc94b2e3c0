//! Accuracy measures of the M competitions: sMAPE, MASE (and OWA from group
//! means), and interval coverage, as `../shared/data/README.md` defines them.

/// Mean over the horizon of 200·|y−f| / (|y|+|f|); 0/0 counts as 0.
pub fn smape(actual: &[f64], forecast: &[f64]) -> f64 {
    let n = actual.len().min(forecast.len());
    if n == 0 {
        return 0.0;
    }
    let total: f64 = actual
        .iter()
        .zip(forecast)
        .map(|(y, f)| {
            let denom = y.abs() + f.abs();
            if denom == 0.0 {
                0.0
            } else {
                200.0 * (y - f).abs() / denom
            }
        })
        .sum();
    total / n as f64
}

/// In-sample mean absolute seasonal difference with lag `m` (lag 1 when
/// n ≤ m): the MASE scale. `None` when it cannot be computed or is zero.
pub fn mase_scale(train: &[f64], m: usize) -> Option<f64> {
    let n = train.len();
    let lag = if n <= m { 1 } else { m.max(1) };
    if n <= lag {
        return None;
    }
    let s: f64 = (lag..n).map(|t| (train[t] - train[t - lag]).abs()).sum();
    let scale = s / (n - lag) as f64;
    (scale > 0.0 && scale.is_finite()).then_some(scale)
}

/// Mean absolute error over the horizon divided by [`mase_scale`].
pub fn mase(actual: &[f64], forecast: &[f64], scale: f64) -> f64 {
    let n = actual.len().min(forecast.len());
    if n == 0 {
        return 0.0;
    }
    let mae: f64 = actual
        .iter()
        .zip(forecast)
        .map(|(y, f)| (y - f).abs())
        .sum::<f64>()
        / n as f64;
    mae / scale
}

/// Overall weighted average against Naive2: ½(sMAPE/sMAPE₂ + MASE/MASE₂).
pub fn owa(smape: f64, mase: f64, smape_naive2: f64, mase_naive2: f64) -> f64 {
    0.5 * (smape / smape_naive2 + mase / mase_naive2)
}

/// Number of actual values inside `[lower, upper]`.
pub fn covered(actual: &[f64], lower: &[f64], upper: &[f64]) -> usize {
    actual
        .iter()
        .zip(lower.iter().zip(upper))
        .filter(|(y, (lo, hi))| *lo <= *y && *y <= *hi)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smape_known_values() {
        assert_eq!(smape(&[100.0], &[100.0]), 0.0);
        assert!((smape(&[100.0], &[50.0]) - 200.0 * 50.0 / 150.0).abs() < 1e-12);
        assert_eq!(smape(&[0.0, 0.0], &[0.0, 0.0]), 0.0);
        assert!((smape(&[0.0], &[1.0]) - 200.0).abs() < 1e-12);
    }

    #[test]
    fn mase_uses_the_seasonal_lag_and_lag_one_when_short() {
        let train = [1.0, 2.0, 4.0, 8.0];
        // lag 2: |4-1| + |8-2| = 9 over 2 = 4.5
        assert_eq!(mase_scale(&train, 2), Some(4.5));
        // n <= m: lag 1: (1 + 2 + 4) / 3
        assert!((mase_scale(&train, 4).unwrap() - 7.0 / 3.0).abs() < 1e-12);
        assert_eq!(mase_scale(&[3.0, 3.0], 1), None);
        assert!((mase(&[10.0, 12.0], &[11.0, 11.0], 2.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn owa_of_naive2_is_one_and_coverage_counts_the_inside() {
        assert_eq!(owa(14.0, 1.5, 14.0, 1.5), 1.0);
        assert_eq!(
            covered(&[1.0, 5.0, 3.0], &[0.0, 0.0, 3.0], &[2.0, 4.0, 3.0]),
            2
        );
    }
}
