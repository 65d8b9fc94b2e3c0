//! Every method on awkward input: it must fit (perhaps by falling back), never
//! panic, and forecast finite values with intervals that contain the point
//! forecast and do not narrow with the horizon. Plus the properties the issue
//! asks for: constant in → constant out, a pure seasonal pattern repeats, and
//! a serialization round trip that is bit-exact.

use engine::{FittedModel, Forecast, Horizon, Level, Method, ModelSpec, SeriesData};

mod common;
use common::Lcg;

fn levels() -> Vec<Level> {
    vec![Level::parse(80.0).unwrap(), Level::parse(95.0).unwrap()]
}

/// Checks everything a forecast must satisfy.
fn check(what: &str, f: &Forecast, h: usize) {
    assert_eq!(f.mean.len(), h, "{what}: horizon");
    assert!(
        f.mean.iter().all(|v| v.is_finite()),
        "{what}: mean {:?}",
        f.mean
    );
    assert_eq!(f.intervals.len(), 2, "{what}: levels");
    let mut prev_width = vec![0.0; f.intervals.len()];
    let mut prev_mean: f64 = 0.0;
    for step in 0..h {
        let mut inner = 0.0;
        for (i, iv) in f.intervals.iter().enumerate() {
            let (lo, hi, m) = (iv.lower[step], iv.upper[step], f.mean[step]);
            assert!(
                lo.is_finite() && hi.is_finite(),
                "{what}: interval not finite"
            );
            assert!(lo <= m && m <= hi, "{what}: step {step}: {lo} {m} {hi}");
            let width = hi - lo;
            // Relative slack: widths are computed as mean ± w in floating
            // point, so a width is known to the rounding of this step's
            // mean and the last one's.
            let slack = 1e-9 * (m.abs() + prev_mean.abs() + width.abs() + 1e-300);
            assert!(
                width + slack >= prev_width[i],
                "{what}: level {} narrows at step {step}: {} < {}",
                iv.level,
                width,
                prev_width[i]
            );
            assert!(width + slack >= inner, "{what}: 95% narrower than 80%");
            inner = width;
            prev_width[i] = width;
        }
        prev_mean = f.mean[step];
    }
}

fn fit_and_check(what: &str, y: Vec<f64>, m: Option<usize>, h: usize) -> FittedModel {
    let data = SeriesData::parse(y).unwrap();
    let mut last = None;
    for method in Method::ALL {
        let label = format!("{what} / {method}");
        // Unclipped: clipping at zero may narrow an interval whose mean
        // falls towards zero (tests/real_data.rs covers clipping).
        let spec = ModelSpec {
            nonnegative: Some(false),
            ..ModelSpec::new(method, m)
        };
        let fitted = spec.fit(&data).unwrap_or_else(|e| panic!("{label}: {e}"));
        let f = fitted.forecast(Horizon::parse(h as i64).unwrap(), &levels());
        check(&label, &f, h);
        last = Some(fitted);
    }
    last.unwrap()
}

#[test]
fn very_short_series() {
    for n in 1..=7 {
        let y: Vec<f64> = (0..n).map(|t| 10.0 + (t as f64 * 1.7).sin()).collect();
        fit_and_check(&format!("n={n}"), y.clone(), None, 12);
        fit_and_check(&format!("n={n}, m=12"), y, Some(12), 12);
    }
}

#[test]
fn constant_zero_and_negative_series() {
    fit_and_check("constant", vec![3.5; 40], Some(4), 10);
    fit_and_check("zeros", vec![0.0; 40], Some(12), 10);
    let mut rng = Lcg(7);
    let neg: Vec<f64> = (0..60)
        .map(|t| -50.0 - t as f64 + 5.0 * rng.centered())
        .collect();
    fit_and_check("negative", neg, Some(4), 10);
    let mixed: Vec<f64> = (0..60)
        .map(|t| (t as f64 * 0.5).sin() * 10.0 + 3.0 * rng.centered())
        .collect();
    fit_and_check("around zero", mixed, Some(12), 24);
    let intermittent: Vec<f64> = (0..50)
        .map(|t| if t % 7 == 0 { 5.0 } else { 0.0 })
        .collect();
    fit_and_check("intermittent", intermittent, Some(7), 14);
}

#[test]
fn huge_and_tiny_magnitudes() {
    let mut rng = Lcg(11);
    for scale in [1e12, 1e-9, 1e300, 1e-300] {
        let y: Vec<f64> = (0..48)
            .map(|t| scale * (10.0 + t as f64 * 0.1 + (t as f64 * 0.52).sin() + rng.centered()))
            .collect();
        fit_and_check(&format!("scale {scale:e}"), y, Some(12), 18);
    }
}

#[test]
fn season_longer_than_the_series() {
    let y: Vec<f64> = (0..20).map(|t| 100.0 + t as f64).collect();
    fit_and_check("m=50 > n=20", y.clone(), Some(50), 8);
    fit_and_check("m=20 = n", y.clone(), Some(20), 8);
    fit_and_check("m=12, n=20", y, Some(12), 30);
}

#[test]
fn long_series() {
    let mut rng = Lcg(3);
    let mut level = 1000.0;
    let y: Vec<f64> = (0..100_000)
        .map(|t| {
            level += rng.centered();
            level + 10.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).sin()
        })
        .collect();
    fit_and_check("n=100000, m=24", y, Some(24), 48);
}

#[test]
fn random_series_of_every_shape() {
    let mut rng = Lcg(2024);
    for case in 0..25 {
        let n = 2 + ((rng.centered() + 0.5) * 150.0) as usize;
        let scale = 10f64.powi(((rng.centered() + 0.5) * 16.0) as i32 - 8);
        let trend = rng.centered() * 0.2;
        let m = [1usize, 4, 7, 12][case % 4];
        let y: Vec<f64> = (0..n)
            .map(|t| {
                scale
                    * (5.0
                        + trend * t as f64
                        + ((t % m) as f64 / m as f64 * std::f64::consts::TAU).sin()
                        + rng.centered())
            })
            .collect();
        fit_and_check(
            &format!("random case {case} (n={n}, m={m})"),
            y,
            Some(m),
            1 + case,
        );
    }
}

#[test]
fn constant_series_forecasts_the_constant() {
    for (n, m) in [(30, 4), (5, 1), (100, 12), (1, 1)] {
        let y = SeriesData::parse(vec![42.0; n]).unwrap();
        // SBA deflates Croston by (1 − alpha/2) by design (its bias
        // correction assumes intermittent demand).
        for method in Method::ALL.into_iter().filter(|m| *m != Method::CrostonSba) {
            let fitted = ModelSpec::new(method, Some(m)).fit(&y).unwrap();
            let f = fitted.forecast(Horizon::parse(15).unwrap(), &levels());
            for v in &f.mean {
                assert!((v - 42.0).abs() < 1e-6, "{method} n={n}: {v}");
            }
        }
    }
}

#[test]
fn pure_seasonal_pattern_repeats() {
    let pattern = [
        12.0, 18.0, 25.0, 9.0, 14.0, 30.0, 22.0, 11.0, 16.0, 27.0, 19.0, 8.0,
    ];
    let m = pattern.len();
    let y: Vec<f64> = (0..6 * m).map(|t| pattern[t % m]).collect();
    let data = SeriesData::parse(y).unwrap();
    let seasonal = [
        Method::Auto,
        Method::SeasonalNaive,
        Method::Naive2,
        Method::Ets,
        Method::Arima,
        Method::Theta,
        Method::OptimizedTheta,
        Method::DynamicTheta,
        Method::Ces,
    ];
    for method in seasonal {
        let fitted = ModelSpec::new(method, Some(m)).fit(&data).unwrap();
        let f = fitted.forecast(Horizon::parse(2 * m as i64).unwrap(), &[]);
        for (i, v) in f.mean.iter().enumerate() {
            let want = pattern[i % m];
            assert!(
                (v - want).abs() < 0.02 * want,
                "{method} ({}): step {i}: {v} vs {want}",
                fitted.description()
            );
        }
    }
}

#[test]
fn round_trip_is_bit_exact_for_every_method() {
    let mut rng = Lcg(99);
    let cases: Vec<(Vec<f64>, usize)> = vec![
        (
            (0..72)
                .map(|t| 50.0 + t as f64 + 8.0 * ((t % 12) as f64).sin() + rng.centered())
                .collect(),
            12,
        ),
        ((0..9).map(|t| t as f64 * 1.5 + rng.centered()).collect(), 4),
        (vec![7.0], 1),
        // Intermittent counts: `auto` switches to an intermittent model.
        (
            (0..60)
                .map(|t| {
                    if (t * 7) % 11 < 3 {
                        (t % 5 + 1) as f64
                    } else {
                        0.0
                    }
                })
                .collect(),
            1,
        ),
    ];
    for (y, m) in cases {
        let data = SeriesData::parse(y).unwrap();
        for method in Method::ALL {
            let fitted = ModelSpec::new(method, Some(m)).fit(&data).unwrap();
            let bytes = postcard::to_stdvec(&fitted).unwrap();
            let back: FittedModel = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, fitted, "{method}");
            let json = serde_json::to_string(&fitted).unwrap();
            let back_json: FittedModel = serde_json::from_str(&json).unwrap();
            assert_eq!(back_json, fitted, "{method} (JSON)");
            let h = Horizon::parse(30).unwrap();
            let (a, b) = (fitted.forecast(h, &levels()), back.forecast(h, &levels()));
            let c = back_json.forecast(h, &levels());
            let bits = |f: &Forecast| -> Vec<u64> {
                f.mean
                    .iter()
                    .chain(
                        f.intervals
                            .iter()
                            .flat_map(|i| i.lower.iter().chain(&i.upper)),
                    )
                    .map(|v| v.to_bits())
                    .collect()
            };
            assert_eq!(bits(&a), bits(&b), "{method}");
            assert_eq!(bits(&a), bits(&c), "{method} (JSON)");
        }
    }
}

#[test]
fn fitted_models_are_small() {
    let y: Vec<f64> = (0..2000)
        .map(|t| 100.0 + (t as f64 * 0.3).sin() * 5.0)
        .collect();
    let data = SeriesData::parse(y).unwrap();
    for method in Method::ALL {
        let fitted = ModelSpec::new(method, Some(12)).fit(&data).unwrap();
        let bytes = postcard::to_stdvec(&fitted).unwrap();
        // Far less than the 16 kB the training data would take.
        assert!(bytes.len() < 4_000, "{method}: {} bytes", bytes.len());
    }
}

#[test]
fn intervals_are_calibrated_on_a_random_walk() {
    // Naive is the right model for a random walk: its 95% interval should
    // cover about 95% of the continuation.
    let mut rng = Lcg(5);
    let (mut inside, mut total) = (0usize, 0usize);
    for _ in 0..300 {
        let mut y = vec![100.0];
        for _ in 0..59 {
            let last = y[y.len() - 1];
            y.push(last + rng.centered());
        }
        let mut future = vec![];
        let mut last = y[59];
        for _ in 0..8 {
            last += rng.centered();
            future.push(last);
        }
        let fitted = ModelSpec::new(Method::Naive, None)
            .fit(&SeriesData::parse(y).unwrap())
            .unwrap();
        let f = fitted.forecast(Horizon::parse(8).unwrap(), &levels());
        let iv = &f.intervals[1];
        for (j, v) in future.iter().enumerate() {
            total += 1;
            inside += usize::from(iv.lower[j] <= *v && *v <= iv.upper[j]);
        }
    }
    let coverage = inside as f64 / total as f64;
    assert!((0.90..=0.99).contains(&coverage), "coverage {coverage}");
}
