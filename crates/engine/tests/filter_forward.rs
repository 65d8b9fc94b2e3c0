//! Filter forward ([`FittedModel::extend`], [`FittedModel::filter`]): new
//! observations update a fitted model's states with its parameters, for
//! every method.

use engine::{ExtendError, Horizon, Level, Method, ModelSpec, SeriesData};

/// A seasonal series with trend and a little deterministic noise.
fn series(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|t| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((x >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
            40.0 + 0.4 * t as f64 + [6.0, -2.0, 3.0, -5.0][t % 4] + 2.0 * noise
        })
        .collect()
}

fn close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-9 * y.abs().max(1.0),
            "{what}: {a:?} vs {b:?}"
        );
    }
}

#[test]
fn extending_equals_filtering_the_longer_series_for_every_method() {
    let h = Horizon::parse(8).unwrap();
    let levels = [Level::parse(90.0).unwrap()];
    for seed in 0..3 {
        let y = series(72, seed);
        let n = 56;
        let history = SeriesData::parse(y[..n].to_vec()).unwrap();
        let full = SeriesData::parse(y.clone()).unwrap();
        for method in Method::ALL {
            let fitted = ModelSpec::new(method, Some(4)).fit(&history).unwrap();
            // In two steps, then in one: the same state.
            let once = fitted.extend(&history, &y[n..]).unwrap();
            let mid = SeriesData::parse(y[..64].to_vec()).unwrap();
            let twice = fitted
                .extend(&history, &y[n..64])
                .unwrap()
                .extend(&mid, &y[64..])
                .unwrap();
            let filtered = fitted.filter(&full).unwrap();
            let (a, b, c) = (
                once.forecast(h, &levels),
                twice.forecast(h, &levels),
                filtered.forecast(h, &levels),
            );
            close(&a.mean, &c.mean, &format!("{method} extend vs filter"));
            close(&b.mean, &c.mean, &format!("{method} two extends vs filter"));
            close(
                &a.intervals[0].upper,
                &c.intervals[0].upper,
                &format!("{method} intervals"),
            );
            assert_eq!(once.n_obs(), 72);
            assert_eq!(once.description(), fitted.description(), "{method}");
            // The parameters are kept: a refit of the longer series is a
            // different model in general, the filter is not a refit.
            assert!(a.mean.iter().all(|v| v.is_finite()), "{method}");
        }
    }
}

#[test]
fn filtering_the_training_series_again_keeps_the_forecast() {
    // The fitted state is the filter's state at the end of the training
    // data: filtering the same series again changes nothing (families whose
    // state is recomputed exactly; MSTL decomposes again, see `filter`).
    let h = Horizon::parse(6).unwrap();
    let y = SeriesData::parse(series(60, 7)).unwrap();
    for method in Method::ALL {
        let fitted = ModelSpec::new(method, Some(4)).fit(&y).unwrap();
        let again = fitted.filter(&y).unwrap();
        let (a, b) = (fitted.forecast(h, &[]), again.forecast(h, &[]));
        for (x, z) in a.mean.iter().zip(&b.mean) {
            assert!(
                (x - z).abs() <= 1e-6 * z.abs().max(1.0),
                "{method} ({}): {:?} vs {:?}",
                fitted.description(),
                a.mean,
                b.mean
            );
        }
    }
}

#[test]
fn new_observations_move_the_forecast_as_the_model_says() {
    // Naive: the last new value. SES: one more level update with the
    // fitted alpha, checked by hand from two extensions.
    let y: Vec<f64> = series(40, 3);
    let history = SeriesData::parse(y.clone()).unwrap();
    let h = Horizon::parse(3).unwrap();
    let naive = ModelSpec::new(Method::Naive, None).fit(&history).unwrap();
    let moved = naive.extend(&history, &[7.0, 11.0]).unwrap();
    assert_eq!(moved.forecast(h, &[]).mean, vec![11.0; 3]);

    let ses = ModelSpec::new(Method::Ses, None).fit(&history).unwrap();
    let level0 = ses.forecast(h, &[]).mean[0];
    let level1 = ses
        .extend(&history, &[100.0])
        .unwrap()
        .forecast(h, &[])
        .mean[0];
    let alpha = (level1 - level0) / (100.0 - level0);
    assert!(alpha > 0.0 && alpha <= 1.0, "alpha {alpha}");
    let longer = SeriesData::parse([y.clone(), vec![100.0]].concat()).unwrap();
    let level2 = ses.extend(&longer, &[50.0]).unwrap().forecast(h, &[]).mean[0];
    assert!(
        (level2 - (level1 + alpha * (50.0 - level1))).abs() < 1e-9,
        "{level2}"
    );
}

#[test]
fn a_shorter_series_is_refused_and_gaps_are_kept() {
    let y = SeriesData::parse(series(30, 1)).unwrap();
    let fitted = ModelSpec::new(Method::Ets, Some(4)).fit(&y).unwrap();
    let short = SeriesData::parse(series(20, 1)).unwrap();
    assert!(matches!(
        fitted.filter(&short),
        Err(ExtendError::Shorter {
            fitted: 30,
            got: 20
        })
    ));
    let extended = fitted.extend(&y, &[f64::NAN, 60.0]).unwrap();
    assert_eq!(extended.n_missing(), 1);
    assert_eq!(extended.n_obs(), 32);
    assert!(extended
        .forecast(Horizon::parse(4).unwrap(), &[])
        .mean
        .iter()
        .all(|v| v.is_finite()));
}
