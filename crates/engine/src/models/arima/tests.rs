//! Tests of the AutoARIMA family: known values, properties, robustness and
//! the serialization round trip.

use super::likelihood::{Order, Work};
use super::search::{fit_css, fit_exact};
use super::*;
use crate::test_support::Lcg;

/// Deterministic N(0, 1) draws (sum of 12 uniforms from the tests' LCG).
struct Rng(Lcg);

impl Rng {
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.0.uniform()).sum::<f64>() - 6.0
    }
}

fn ar1(phi: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng(Lcg(seed));
    let mut x = 0.0;
    (0..n + 50)
        .map(|_| {
            x = phi * x + rng.normal();
            x
        })
        .skip(50)
        .collect()
}

fn assert_finite(f: &[f64], what: &str) {
    assert!(f.iter().all(|v| v.is_finite()), "{what}: {f:?}");
}

#[test]
fn ar1_coefficient_is_recovered_by_css_and_exact_likelihood() {
    for (phi, seed) in [(0.6, 1), (-0.4, 2), (0.9, 3)] {
        let y = ar1(phi, 500, seed);
        let order = Order {
            p: 1,
            q: 0,
            sp: 0,
            sq: 0,
            constant: true,
        };
        let mut work = Work::default();
        let css = fit_css(&y, 1, &order, &mut work).expect("css fit");
        assert!((css.beta[0] - phi).abs() < 0.08, "css {css:?} vs {phi}");
        let exact = fit_exact(&y, 1, &css, &mut work).expect("exact fit");
        assert!(
            (exact.beta[0] - phi).abs() < 0.08,
            "exact {exact:?} vs {phi}"
        );
        assert!(exact.beta[1].abs() < 0.5, "mean {}", exact.beta[1]);
    }
}

#[test]
fn auto_fit_of_an_ar1_is_stationary_and_reverts_to_the_mean() {
    let y: Vec<f64> = ar1(0.7, 300, 11).iter().map(|v| 50.0 + v).collect();
    let a = Arima::fit(&y, 1).unwrap();
    assert_eq!(a.d, 0, "{}", a.describe());
    assert!(a.describe().contains("non-zero mean"), "{}", a.describe());
    let f = a.forecast(200);
    assert!((f[199] - 50.0).abs() < 1.0, "{}", f[199]);
}

#[test]
fn random_walk_gets_one_difference() {
    let mut rng = Rng(Lcg(5));
    let mut level = 100.0;
    let y: Vec<f64> = (0..200)
        .map(|_| {
            level += rng.normal();
            level
        })
        .collect();
    let a = Arima::fit(&y, 1).unwrap();
    assert_eq!(a.d, 1, "{}", a.describe());
}

#[test]
fn linear_trend_with_noise_gets_a_drift() {
    let mut rng = Rng(Lcg(9));
    let y: Vec<f64> = (0..120)
        .map(|t| 3.0 * t as f64 + 2.0 * rng.normal())
        .collect();
    let a = Arima::fit(&y, 1).unwrap();
    let f = a.forecast(10);
    let slope = (f[9] - f[0]) / 9.0;
    assert!((slope - 3.0).abs() < 0.3, "{} slope {slope}", a.describe());
}

#[test]
fn pure_seasonal_pattern_repeats() {
    let pattern = [
        5.0, 7.0, 9.0, 4.0, 3.0, 8.0, 12.0, 15.0, 11.0, 6.0, 2.0, 1.0,
    ];
    let y: Vec<f64> = (0..96).map(|t| pattern[t % 12]).collect();
    let a = Arima::fit(&y, 12).unwrap();
    let f = a.forecast(30);
    for (i, v) in f.iter().enumerate() {
        assert!(
            (v - pattern[(96 + i) % 12]).abs() < 1e-6,
            "{} step {i}: {v}",
            a.describe()
        );
    }
}

#[test]
fn noisy_seasonal_series_is_differenced_seasonally() {
    let mut rng = Rng(Lcg(21));
    let y: Vec<f64> = (0..120)
        .map(|t| 100.0 + 20.0 * ((t % 12) as f64 * std::f64::consts::PI / 6.0).sin() + rng.normal())
        .collect();
    let a = Arima::fit(&y, 12).unwrap();
    assert_eq!(a.sd, 1, "{}", a.describe());
    assert!(a.describe().contains("[12]"), "{}", a.describe());
    let f = a.forecast(12);
    for (i, v) in f.iter().enumerate() {
        let truth = 100.0 + 20.0 * (((120 + i) % 12) as f64 * std::f64::consts::PI / 6.0).sin();
        assert!((v - truth).abs() < 4.0, "step {i}: {v} vs {truth}");
    }
}

#[test]
fn constant_series_forecasts_the_constant() {
    for n in [1, 2, 5, 40] {
        let y = vec![42.5; n];
        let a = Arima::fit(&y, 12).unwrap();
        assert_eq!(a.forecast(7), vec![42.5; 7], "n = {n}");
    }
}

#[test]
fn hand_checked_ar1_forecasts() {
    // ARIMA(1,0,0) with mean 10, φ = 0.5, last value 12: 10 + 2·0.5^h.
    let model = Arima {
        m: 1,
        d: 0,
        sd: 0,
        ar: vec![0.5],
        ma: vec![],
        sar: vec![],
        sma: vec![],
        constant: true,
        mean: 10.0,
        sigma2: 1.0,
        state: vec![],
        tail: vec![],
    }
    .refilter(&[9.0, 11.0, 12.0]);
    let f = model.forecast(3);
    for (got, want) in f.iter().zip([11.0, 10.5, 10.25]) {
        assert!((got - want).abs() < 1e-12, "{f:?}");
    }
    // Random walk: forecast-error variance σ²·h.
    let rw = Arima::naive(&[1.0, 2.0, 4.0], 1);
    let v = rw.forecast_variance(3);
    let s2 = rw.sigma2();
    assert!((s2 - 2.5).abs() < 1e-12);
    for (h, got) in v.iter().enumerate() {
        assert!((got - s2 * (h + 1) as f64).abs() < 1e-12, "{v:?}");
    }
}

#[test]
fn forecasts_scale_with_the_data() {
    let mut rng = Rng(Lcg(31));
    let y: Vec<f64> = (0..60)
        .map(|t| 10.0 + 0.3 * t as f64 + ((t % 4) as f64) + rng.normal())
        .collect();
    let a = Arima::fit(&y, 4).unwrap();
    let big: Vec<f64> = y.iter().map(|v| 1e9 * v + 5.0).collect();
    let b = Arima::fit(&big, 4).unwrap();
    assert_eq!(a.describe(), b.describe());
    for (fa, fb) in a.forecast(8).iter().zip(b.forecast(8)) {
        assert!(((1e9 * fa + 5.0) - fb).abs() < 1e-4 * fb.abs(), "{fa} {fb}");
    }
}

#[test]
fn refilter_on_the_training_data_reproduces_the_forecast() {
    let mut rng = Rng(Lcg(41));
    let y: Vec<f64> = (0..80)
        .map(|t| 50.0 + 0.5 * t as f64 + 5.0 * ((t % 4) as f64) + rng.normal())
        .collect();
    let a = Arima::fit(&y, 4).unwrap();
    let again = a.refilter(&y);
    assert_eq!(a.forecast(12), again.forecast(12));
    // A prefix gives a different, still finite, forecast.
    let prefix = a.refilter(&y[..60]);
    assert_finite(&prefix.forecast(12), "prefix");
    assert_eq!(prefix.describe(), a.describe());
}

#[test]
fn refilter_survives_short_input() {
    let mut rng = Rng(Lcg(43));
    let y: Vec<f64> = (0..72)
        .map(|t| ((t % 12) as f64) * 3.0 + rng.normal())
        .collect();
    let a = Arima::fit(&y, 12).unwrap();
    for n in 0..20 {
        let r = a.refilter(&y[..n]);
        let f = r.forecast(5);
        assert_eq!(f.len(), 5);
        assert_finite(&f, &format!("refilter n = {n}"));
    }
}

#[test]
fn serde_round_trip_is_bit_exact() {
    let mut rng = Rng(Lcg(51));
    let y: Vec<f64> = (0..100)
        .map(|t| 20.0 + ((t % 12) as f64) + 0.1 * t as f64 + rng.normal())
        .collect();
    let a = Arima::fit(&y, 12).unwrap();
    let bytes = postcard::to_allocvec(&a).unwrap();
    let back: Arima = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(a, back);
    let (f1, f2) = (a.forecast(24), back.forecast(24));
    assert!(f1.iter().zip(&f2).all(|(x, y)| x.to_bits() == y.to_bits()));
    let json = serde_json::to_string(&a).unwrap();
    let back: Arima = serde_json::from_str(&json).unwrap();
    assert_eq!(a.forecast(24), back.forecast(24));
    assert!(bytes.len() < 1024, "state is {} bytes", bytes.len());
}

#[test]
fn never_panics_nor_returns_non_finite_values() {
    let mut rng = Rng(Lcg(61));
    let mut inputs: Vec<(Vec<f64>, usize)> = Vec::new();
    for n in 1..40 {
        for m in [1, 4, 12] {
            inputs.push(((0..n).map(|_| rng.normal()).collect(), m));
            inputs.push(((0..n).map(|t| (t % 3) as f64).collect(), m));
        }
    }
    inputs.push((vec![0.0; 50], 12));
    inputs.push((
        (0..50)
            .map(|t| if t % 7 == 0 { 1.0 } else { 0.0 })
            .collect(),
        7,
    ));
    inputs.push((
        (0..80)
            .map(|_| 1e12 * (1.0 + 0.01 * rng.normal()))
            .collect(),
        12,
    ));
    inputs.push((
        (0..80).map(|_| 1e-9 * (1.0 + 0.1 * rng.normal())).collect(),
        4,
    ));
    inputs.push(((0..80).map(|t| -1e6 - t as f64 * 1e3).collect(), 1));
    inputs.push((
        (0..60).map(|t| if t < 30 { 0.0 } else { 100.0 }).collect(),
        1,
    ));
    inputs.push(((0..200).map(|t| (t as f64).powi(3)).collect(), 1));
    inputs.push(((0..30).map(|t| (t as f64 * 1.7).sin()).collect(), 52));
    for (y, m) in &inputs {
        let a = Arima::fit(y, *m).unwrap_or_else(|e| panic!("{e} on {y:?}"));
        let f = a.forecast(20);
        assert_eq!(f.len(), 20);
        assert_finite(&f, &format!("{} on n = {} m = {m}", a.describe(), y.len()));
        assert_finite(&a.forecast_variance(20), "variance");
        assert!(a.sigma2().is_finite());
    }
    assert!(Arima::fit(&[], 1).is_err());
    assert!(Arima::fit(&[1.0, f64::NAN], 1).is_err());
}

#[test]
fn describe_names_the_orders() {
    let model = Arima {
        m: 12,
        d: 1,
        sd: 1,
        ar: vec![],
        ma: vec![-0.4],
        sar: vec![],
        sma: vec![-0.6],
        constant: false,
        mean: 0.0,
        sigma2: 1.0,
        state: vec![],
        tail: vec![],
    };
    assert_eq!(model.describe(), "ARIMA(0,1,1)(0,1,1)[12]");
    let drift = Arima {
        m: 1,
        d: 1,
        sd: 0,
        constant: true,
        ma: vec![],
        sma: vec![],
        ..model
    };
    assert_eq!(drift.describe(), "ARIMA(0,1,0) with drift");
}

#[test]
fn inconsistent_state_or_huge_season_does_not_panic() {
    let y: Vec<f64> = (0..30).map(|t| (t as f64 * 0.7).sin() + t as f64).collect();
    let a = Arima::fit(&y, usize::MAX).unwrap();
    assert_finite(&a.forecast(5), "huge m");
    let broken = Arima {
        m: usize::MAX,
        sd: 1,
        sar: vec![0.5],
        ..a.clone()
    };
    assert_eq!(broken.forecast(3).len(), 3);
    assert_finite(&broken.forecast(3), "broken");
    assert_finite(&broken.forecast_variance(3), "broken variance");
    assert_finite(&broken.refilter(&y).forecast(3), "broken refilter");
    let no_state = Arima {
        state: vec![1.0; 99],
        ..a
    };
    assert_finite(&no_state.forecast(3), "wrong state length");
}
