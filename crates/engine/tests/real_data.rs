//! Real-data properties: gaps, intermittent demand, non-negative data and
//! equivariance to the scale of the series (issue 8 items 6–8, issue 13
//! defect 8).

use engine::{Forecast, Horizon, Level, Method, ModelSpec, SeriesData, SeriesError};

mod common;
use common::Lcg;

fn levels() -> Vec<Level> {
    vec![Level::parse(80.0).unwrap(), Level::parse(95.0).unwrap()]
}

fn forecast(spec: &ModelSpec, y: &SeriesData, h: i64) -> Forecast {
    spec.fit(y)
        .unwrap()
        .forecast(Horizon::parse(h).unwrap(), &levels())
}

const INTERMITTENT: [Method; 6] = [
    Method::Croston,
    Method::CrostonSba,
    Method::CrostonOptimized,
    Method::Tsb,
    Method::Adida,
    Method::Imapa,
];

#[test]
fn forecasts_and_widths_are_equivariant_to_scale() {
    let mut rng = Lcg(8);
    let base: Vec<f64> = (0..72)
        .map(|t| 50.0 + 0.4 * t as f64 + 8.0 * ((t % 12) as f64 * 0.52).sin() + 4.0 * rng.next())
        .collect();
    let typical = base.iter().map(|v| v.abs()).sum::<f64>() / base.len() as f64;
    let reference = SeriesData::parse(base.clone()).unwrap();
    for scale in [1e160, 1e-160, 1e300, 3.7e-12] {
        let scaled = SeriesData::parse(base.iter().map(|v| v * scale).collect()).unwrap();
        for method in [Method::Naive, Method::Ets, Method::Auto, Method::Theta] {
            let spec = ModelSpec::new(method, Some(12));
            let (a, b) = (
                forecast(&spec, &reference, 24),
                forecast(&spec, &scaled, 24),
            );
            let close = |x: f64, y: f64, what: &str| {
                let rel = (x * scale - y).abs() / (typical * scale);
                assert!(
                    rel < 1e-9,
                    "{method} at {scale:e}: {what}: {x} vs {y}: {rel:e}"
                );
            };
            for (x, y) in a.mean.iter().zip(&b.mean) {
                close(*x, *y, "mean");
            }
            for (ia, ib) in a.intervals.iter().zip(&b.intervals) {
                for j in 0..24 {
                    let (wa, wb) = (ia.upper[j] - ia.lower[j], ib.upper[j] - ib.lower[j]);
                    assert!(wa > 0.0, "{method}: width {wa}");
                    close(wa, wb, "width");
                }
            }
        }
    }
}

#[test]
fn interpolable_gaps_do_not_change_the_forecast() {
    // On a straight line, linear interpolation restores the missing values,
    // so every model sees the same series.
    let line: Vec<f64> = (0..40).map(|t| 3.0 + 2.0 * t as f64).collect();
    let gappy: Vec<Option<f64>> = line
        .iter()
        .enumerate()
        .map(|(t, v)| (!(10..15).contains(&t) && t != 25 && t != 37).then_some(*v))
        .collect();
    let full = SeriesData::parse(line).unwrap();
    let gaps = SeriesData::with_gaps(gappy).unwrap();
    for method in [
        Method::Naive,
        Method::Drift,
        Method::Mean,
        Method::Ses,
        Method::Ets,
        Method::Theta,
        Method::Auto,
    ] {
        // ETS (alone or inside `auto`) skips the missing observations
        // instead of using the filled ones: its likelihood has fewer terms,
        // so its parameters may move a little.
        let tol = if matches!(method, Method::Ets | Method::Auto) {
            5e-3
        } else {
            1e-6
        };
        let spec = ModelSpec::new(method, None);
        let fitted = spec.fit(&gaps).unwrap();
        assert_eq!(fitted.n_missing(), 7, "{method}");
        assert_eq!(spec.fit(&full).unwrap().n_missing(), 0);
        let (a, b) = (forecast(&spec, &full, 10), forecast(&spec, &gaps, 10));
        for (x, y) in a.mean.iter().zip(&b.mean) {
            assert!((x - y).abs() < tol * x.abs(), "{method}: {x} vs {y}");
        }
    }
    // Drift: exactly the line's continuation.
    let f = forecast(&ModelSpec::new(Method::Drift, None), &gaps, 3);
    for (i, v) in f.mean.iter().enumerate() {
        assert!((v - (3.0 + 2.0 * (40 + i) as f64)).abs() < 1e-9);
    }
}

#[test]
fn mostly_missing_series_are_refused() {
    let mut v: Vec<Option<f64>> = vec![None; 6];
    v.extend([Some(1.0); 4]);
    assert!(matches!(
        SeriesData::with_gaps(v.clone()),
        Err(SeriesError::MostlyMissing {
            missing: 6,
            len: 10
        })
    ));
    // Off the wire (new observations travel so too) the rule is the fit's
    // and the filter's.
    let wire = serde_json::from_str::<SeriesData>("[null,null,1.0]").unwrap();
    assert!(ModelSpec::new(Method::Naive, None).fit(&wire).is_err());
    let fitted = ModelSpec::new(Method::Naive, None)
        .fit(&SeriesData::parse(vec![1.0, 2.0]).unwrap())
        .unwrap();
    assert!(fitted
        .extend(&SeriesData::parse(vec![1.0, 2.0]).unwrap(), &[f64::NAN; 3])
        .is_err());
    assert!(fitted
        .extend(&SeriesData::parse(vec![1.0, 2.0]).unwrap(), &[f64::NAN; 2])
        .is_ok());
    // Exactly half is still a series.
    v[0] = Some(2.0);
    assert_eq!(SeriesData::with_gaps(v).unwrap().n_missing(), 5);
}

/// Poisson-like demand: 0 most periods, now and then a count of 1 to 9.
fn intermittent_series(rng: &mut Lcg, n: usize, p: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            if rng.next() < p {
                1.0 + (rng.next() * 9.0).floor()
            } else {
                0.0
            }
        })
        .collect()
}

#[test]
fn auto_switches_to_an_intermittent_model_with_intervals_above_zero() {
    let mut rng = Lcg(21);
    let y = SeriesData::parse(intermittent_series(&mut rng, 80, 0.25)).unwrap();
    let fitted = ModelSpec::new(Method::Auto, None).fit(&y).unwrap();
    assert!(
        fitted.description().starts_with("TSB("),
        "{}",
        fitted.description()
    );
    assert!(fitted.nonnegative());
    for method in INTERMITTENT.into_iter().chain([Method::Auto]) {
        let f = forecast(&ModelSpec::new(method, None), &y, 12);
        assert!(f.mean.iter().all(|v| *v > 0.0 && *v < 9.0), "{method}");
        for iv in &f.intervals {
            assert!(
                iv.lower.iter().all(|v| *v >= 0.0),
                "{method}: {:?}",
                iv.lower
            );
            assert!(iv.upper.iter().zip(&f.mean).all(|(u, m)| u > m));
        }
    }
    // Zero every night but busy by day: seasonal counts, not intermittent.
    let daily: Vec<f64> = (0..24 * 14)
        .map(|t| {
            if t % 24 < 6 {
                0.0
            } else {
                (20.0 + 10.0 * rng.next()).round()
            }
        })
        .collect();
    let daily = SeriesData::parse(daily).unwrap();
    let candidate = ModelSpec {
        season_candidates: vec![24],
        ..ModelSpec::with_seasons(Method::Auto, vec![])
    };
    for spec in [ModelSpec::new(Method::Auto, Some(24)), candidate] {
        let fitted = spec.fit(&daily).unwrap();
        assert!(
            !fitted.description().contains("intermittent"),
            "{}",
            fitted.description()
        );
    }
    // Without any season to test, the same series counts as intermittent.
    let fitted = ModelSpec::new(Method::Auto, None).fit(&daily).unwrap();
    assert!(
        fitted.description().contains("intermittent"),
        "{}",
        fitted.description()
    );
    // No demand at all: zero, with a zero-width interval.
    let zeros = SeriesData::parse(vec![0.0; 30]).unwrap();
    let f = forecast(&ModelSpec::new(Method::Auto, None), &zeros, 5);
    assert_eq!(f.mean, vec![0.0; 5]);
    assert_eq!(f.intervals[1].lower, vec![0.0; 5]);
}

#[test]
fn intermittent_intervals_are_calibrated() {
    let mut rng = Lcg(77);
    for method in [Method::CrostonSba, Method::Tsb, Method::Imapa] {
        let (mut inside, mut total) = (0usize, 0usize);
        for _ in 0..150 {
            let y = intermittent_series(&mut rng, 68, 0.3);
            let (train, test) = y.split_at(60);
            let f = forecast(
                &ModelSpec::new(method, None),
                &SeriesData::parse(train.to_vec()).unwrap(),
                8,
            );
            let iv = &f.intervals[1];
            for (j, v) in test.iter().enumerate() {
                total += 1;
                inside += usize::from(iv.lower[j] <= *v && *v <= iv.upper[j]);
            }
        }
        let coverage = inside as f64 / total as f64;
        assert!((0.9..=0.995).contains(&coverage), "{method}: {coverage}");
    }
}

#[test]
fn nonnegative_clips_only_when_on() {
    // Falling counts: drift goes below zero after 11 steps.
    let counts = SeriesData::parse((0..20).map(|t| 30.0 - t as f64).collect()).unwrap();
    let fractional = SeriesData::parse((0..20).map(|t| 30.5 - t as f64).collect()).unwrap();
    let clipped = |f: &Forecast| {
        f.mean.iter().all(|v| *v >= 0.0)
            && f.intervals
                .iter()
                .all(|iv| iv.lower.iter().chain(&iv.upper).all(|v| *v >= 0.0))
    };
    let spec = |nonnegative| ModelSpec {
        nonnegative,
        ..ModelSpec::new(Method::Drift, None)
    };
    // Default: counts are clipped, fractional values are not.
    let f = forecast(&spec(None), &counts, 20);
    assert!(clipped(&f), "{:?}", f.mean);
    assert_eq!(f.mean[19], 0.0);
    assert!(spec(None).fit(&counts).unwrap().nonnegative());
    assert!(!clipped(&forecast(&spec(None), &fractional, 20)));
    // Explicit: always / never.
    assert!(clipped(&forecast(&spec(Some(true)), &fractional, 20)));
    let f = forecast(&spec(Some(false)), &counts, 20);
    assert!(f.mean[19] < 0.0 && !clipped(&f));
    // Clipping keeps the point forecast inside its interval.
    let f = forecast(&spec(Some(true)), &fractional, 20);
    for iv in &f.intervals {
        for j in 0..20 {
            assert!(iv.lower[j] <= f.mean[j] && f.mean[j] <= iv.upper[j]);
        }
    }
}
