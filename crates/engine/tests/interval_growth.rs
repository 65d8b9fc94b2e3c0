//! Prediction intervals on stationary data stay about as wide far ahead as
//! one step ahead: growth of the error scale picked up from the noise of a
//! few calibration steps is not extrapolated (white noise, AR(1)).

use engine::{Horizon, Level, Method, ModelSpec, SeriesData};

mod common;
use common::Lcg;

fn white_noise(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = Lcg(seed);
    (0..n).map(|_| 100.0 + rng.normal()).collect()
}

fn ar1(seed: u64, n: usize, phi: f64) -> Vec<f64> {
    let mut rng = Lcg(seed);
    let mut x = 0.0;
    let mut out = Vec::with_capacity(n);
    for t in 0..n + 100 {
        x = phi * x + rng.normal();
        if t >= 100 {
            out.push(100.0 + x);
        }
    }
    out
}

/// Half-widths at `level` percent at the given steps.
fn half_widths(y: Vec<f64>, method: Method, level: f64, steps: &[usize]) -> Vec<f64> {
    let data = SeriesData::parse(y).unwrap();
    let fitted = ModelSpec::new(method, None).fit(&data).unwrap();
    let h = *steps.iter().max().unwrap();
    let f = fitted.forecast(
        Horizon::parse(h as i64).unwrap(),
        &[Level::parse(level).unwrap()],
    );
    let iv = &f.intervals[0];
    steps
        .iter()
        .map(|&s| (iv.upper[s - 1] - iv.lower[s - 1]) / 2.0)
        .collect()
}

/// Beyond the calibrated steps the squared scale grows at most linearly
/// (random-walk-like) unless the errors support a trend-like quadratic: ten
/// times further ahead, at most √10 times wider. A quadratic fitted to the
/// noise of a few calibration steps made it ten times wider.
fn grows_at_most_like_sqrt_h(what: &str, near: usize, w_near: f64, w_far: f64) {
    assert!(w_near > 0.0 && w_far >= w_near, "{what}: {w_near} {w_far}");
    let bound = 10f64.sqrt() * 1.05;
    assert!(
        w_far / w_near <= bound,
        "{what}: half-width {w_near:.2} at h={near}, {w_far:.2} ten times further ahead"
    );
}

#[test]
fn white_noise_widths_do_not_grow_like_the_horizon() {
    for method in [Method::Mean, Method::Arima, Method::Auto] {
        for seed in 1..=12u64 {
            let w = half_widths(white_noise(seed, 20_000), method, 95.0, &[1, 1000, 10_000]);
            grows_at_most_like_sqrt_h(
                &format!("white noise, {method}, seed {seed}"),
                1000,
                w[1],
                w[2],
            );
        }
    }
}

#[test]
fn ar1_widths_do_not_grow_like_the_horizon() {
    for method in [Method::Mean, Method::Arima, Method::Auto] {
        for seed in 1..=6u64 {
            let w = half_widths(ar1(seed, 20_000, 0.7), method, 80.0, &[1, 100, 1000]);
            grows_at_most_like_sqrt_h(&format!("AR(1), {method}, seed {seed}"), 100, w[1], w[2]);
        }
    }
}
