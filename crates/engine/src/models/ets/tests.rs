//! Unit tests for the ETS family: hand-computed recursions, known shapes
//! (constant, line, pure season), robustness, refilter and serde.

use super::filter::{self, Params};
use super::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

fn spec(e: ErrorType, t: TrendType, s: SeasonType, d: bool) -> EtsSpec {
    EtsSpec::new(e, t, s, d)
}

/// A small deterministic pseudo-random sequence in [-0.5, 0.5) (the tests'
/// LCG from its second draw on, as these tests were written with).
fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = crate::test_support::Lcg(seed);
    rng.uniform();
    (0..n).map(|_| rng.centred()).collect()
}

#[test]
fn ses_recursion_matches_hand_computation() {
    // l0 = 10, alpha = 0.5: l1 = 11, l2 = 11, l3 = 13; errors 2, 0, 4.
    let p = Params {
        alpha: 0.5,
        beta: 0.0,
        gamma: 0.0,
        phi: 1.0,
    };
    let pass = filter::run(EtsSpec::SES, &p, 10.0, 0.0, &mut [], &[12.0, 11.0, 15.0]).unwrap();
    assert!(close(pass.level, 13.0, 1e-12), "{pass:?}");
    assert!(close(pass.sse, 20.0, 1e-12), "{pass:?}");
    let f = filter::forecast(EtsSpec::SES, 1.0, pass.level, 0.0, &[], 3);
    assert_eq!(f, vec![13.0; 3]);
}

#[test]
fn holt_recursion_matches_hand_computation() {
    // l0 = 10, b0 = 1, alpha = 0.5, beta = 0.2 (error-correction form).
    // t1: yhat 11, e 1 -> l 11.5, b 1.2; t2: yhat 12.7, e 1.3 -> l 13.35, b 1.46.
    let p = Params {
        alpha: 0.5,
        beta: 0.2,
        gamma: 0.0,
        phi: 1.0,
    };
    let pass = filter::run(EtsSpec::HOLT, &p, 10.0, 1.0, &mut [], &[12.0, 14.0]).unwrap();
    assert!(close(pass.level, 13.35, 1e-12), "{pass:?}");
    assert!(close(pass.trend, 1.46, 1e-12), "{pass:?}");
    assert!(close(pass.sse, 1.0 + 1.69, 1e-12), "{pass:?}");
    let f = filter::forecast(EtsSpec::HOLT, 1.0, pass.level, pass.trend, &[], 2);
    assert!(
        close(f[0], 14.81, 1e-12) && close(f[1], 16.27, 1e-12),
        "{f:?}"
    );
    // Damped: l + (phi + phi^2 + ...) b.
    let damped = spec(
        ErrorType::Additive,
        TrendType::Additive,
        SeasonType::None,
        true,
    );
    let f = filter::forecast(damped, 0.9, 10.0, 1.0, &[], 2);
    assert!(
        close(f[0], 10.9, 1e-12) && close(f[1], 11.71, 1e-12),
        "{f:?}"
    );
}

#[test]
fn multiplicative_error_likelihood_uses_relative_errors() {
    // MNN, l0 = 10, alpha = 0.5, y = 12: yhat 10, relative error 0.2.
    let p = Params {
        alpha: 0.5,
        beta: 0.0,
        gamma: 0.0,
        phi: 1.0,
    };
    let mnn = spec(
        ErrorType::Multiplicative,
        TrendType::None,
        SeasonType::None,
        false,
    );
    let pass = filter::run(mnn, &p, 10.0, 0.0, &mut [], &[12.0]).unwrap();
    assert!(close(pass.sse, 0.04, 1e-12) && close(pass.sum_log, 10f64.ln(), 1e-12));
    assert!(close(pass.level, 11.0, 1e-12));
}

#[test]
fn seasonal_recursion_matches_hand_computation() {
    // ANA, m = 2, l0 = 10, s = [+1, -1], alpha = 0.5, gamma = 0.2.
    // t0: yhat 11, y 13, e 2 -> l 11, s0 1.4; t1: yhat 10, y 9, e -1 -> l 10.5, s1 -1.2.
    let p = Params {
        alpha: 0.5,
        beta: 0.0,
        gamma: 0.2,
        phi: 1.0,
    };
    let ana = spec(
        ErrorType::Additive,
        TrendType::None,
        SeasonType::Additive,
        false,
    );
    let mut s = [1.0, -1.0];
    let pass = filter::run(ana, &p, 10.0, 0.0, &mut s, &[13.0, 9.0]).unwrap();
    assert!(close(pass.level, 10.5, 1e-12), "{pass:?}");
    assert!(close(s[0], 1.4, 1e-12) && close(s[1], -1.2, 1e-12), "{s:?}");
    assert!(close(pass.sse, 5.0, 1e-12));
}

#[test]
fn describe_names_the_model() {
    let s = spec(
        ErrorType::Multiplicative,
        TrendType::Additive,
        SeasonType::Multiplicative,
        true,
    );
    assert_eq!(s.to_string(), "ETS(M,Ad,M)");
    assert_eq!(EtsSpec::SES.to_string(), "ETS(A,N,N)");
    let y: Vec<f64> = (0..30).map(|t| 5.0 + t as f64).collect();
    let fit = Ets::fit_spec(&y, 1, EtsSpec::HOLT).unwrap();
    assert_eq!(fit.describe(), "ETS(A,A,N)");
}

#[test]
fn constant_series_forecasts_the_constant() {
    for c in [5.0, -3.0, 0.0, 1e12, 1e-9] {
        for m in [1, 4, 12] {
            let y = vec![c; 60];
            let fit = Ets::fit(&y, m).unwrap();
            for v in fit.forecast(8) {
                assert!(close(v, c, 1e-9), "c={c} m={m}: {v} ({})", fit.describe());
            }
        }
    }
}

#[test]
fn holt_on_a_line_forecasts_the_line() {
    let y: Vec<f64> = (0..30).map(|t| 5.0 + 2.0 * t as f64).collect();
    let fit = Ets::fit_spec(&y, 1, EtsSpec::HOLT).unwrap();
    for (i, v) in fit.forecast(10).iter().enumerate() {
        let want = 5.0 + 2.0 * (30 + i) as f64;
        assert!(close(*v, want, 1e-6), "step {}: {v} vs {want}", i + 1);
    }
}

#[test]
fn holt_winters_repeats_a_pure_seasonal_pattern() {
    let pattern = [10.0, 14.0, 9.0, 7.0];
    let y: Vec<f64> = (0..40).map(|t| pattern[t % 4]).collect();
    for s in [
        EtsSpec::HOLT_WINTERS_ADDITIVE,
        EtsSpec::HOLT_WINTERS_MULTIPLICATIVE,
        spec(
            ErrorType::Additive,
            TrendType::None,
            SeasonType::Additive,
            false,
        ),
    ] {
        let fit = Ets::fit_spec(&y, 4, s).unwrap();
        for (i, v) in fit.forecast(12).iter().enumerate() {
            let want = pattern[(40 + i) % 4];
            assert!(close(*v, want, 1e-3), "{s} step {}: {v} vs {want}", i + 1);
        }
    }
    // The automatic choice as well.
    let fit = Ets::fit(&y, 4).unwrap();
    for (i, v) in fit.forecast(12).iter().enumerate() {
        let want = pattern[(40 + i) % 4];
        assert!(close(*v, want, 1e-3), "auto step {}: {v} vs {want}", i + 1);
    }
}

#[test]
fn seasonal_trended_data_gets_a_seasonal_model() {
    let pattern = [0.8, 1.1, 1.3, 0.8];
    let e = noise(48, 7);
    let y: Vec<f64> = (0..48)
        .map(|t| (100.0 + 2.0 * t as f64) * pattern[t % 4] * (1.0 + 0.02 * e[t]))
        .collect();
    let fit = Ets::fit(&y, 4).unwrap();
    let best = fit.best().unwrap();
    assert_ne!(best.spec().season, SeasonType::None, "{}", fit.describe());
    // The forecast keeps the shape: the third quarter is the peak.
    let f = fit.forecast(4);
    assert!(f[2] > f[0] && f[2] > f[1] && f[2] > f[3], "{f:?}");
}

#[test]
fn no_multiplicative_components_on_non_positive_data() {
    let e = noise(60, 3);
    let y: Vec<f64> = (0..60)
        .map(|t| 10.0 + e[t] * 4.0 + [3.0, -3.0, 1.0][t % 3] - if t == 5 { 30.0 } else { 0.0 })
        .collect();
    assert!(y.iter().any(|v| *v <= 0.0));
    let fit = Ets::fit(&y, 3).unwrap();
    for (_, m) in fit.members() {
        let s = m.spec();
        assert_eq!(s.error, ErrorType::Additive, "{}", fit.describe());
        assert_ne!(s.trend, TrendType::Multiplicative);
        assert_ne!(s.season, SeasonType::Multiplicative);
    }
    let mam = Ets::fit_spec(&y, 3, EtsSpec::HOLT_WINTERS_MULTIPLICATIVE);
    assert!(mam.is_err());
}

#[test]
fn parameters_stay_in_the_usual_region() {
    let e = noise(120, 11);
    let y: Vec<f64> = (0..120)
        .map(|t| 50.0 + 0.3 * t as f64 + 8.0 * ((t % 12) as f64 / 2.0).sin() + 3.0 * e[t])
        .collect();
    let cfg = EtsConfig {
        combine: true,
        multiplicative_trend: true,
        undamped_trend: true,
        ..EtsConfig::default()
    };
    let fit = Ets::fit_with(&y, 12, &cfg).unwrap();
    let mut weight = 0.0;
    for (w, m) in fit.members() {
        weight += w;
        let (alpha, beta, gamma, phi) = m.params();
        assert!((ALPHA_LO..=ALPHA_HI).contains(&alpha), "{alpha}");
        assert!((0.0..=alpha).contains(&beta), "{beta} > {alpha}");
        assert!((0.0..=1.0 - alpha).contains(&gamma), "{gamma}");
        if m.spec().damped {
            assert!((PHI_LO..=PHI_HI).contains(&phi), "{phi}");
        } else {
            assert_eq!(phi, 1.0);
        }
    }
    assert!(close(weight, 1.0, 1e-12));
}

#[test]
fn selection_without_combination_keeps_one_model() {
    let e = noise(50, 5);
    let y: Vec<f64> = (0..50).map(|t| 20.0 + t as f64 + 2.0 * e[t]).collect();
    let cfg = EtsConfig {
        combine: false,
        ..EtsConfig::default()
    };
    let fit = Ets::fit_with(&y, 1, &cfg).unwrap();
    assert_eq!(fit.members().count(), 1);
    assert!(!fit.describe().contains('+'), "{}", fit.describe());
}

#[test]
fn robust_on_awkward_input() {
    let e = noise(300, 13);
    let mut cases: Vec<(Vec<f64>, usize)> = vec![
        (vec![], 1),
        (vec![3.0], 1),
        (vec![3.0], 12),
        (vec![1.0, 2.0], 4),
        (vec![0.0; 20], 4),
        (e[..7].to_vec(), 12),
        (e[..30].to_vec(), 12),
        (e[..25].iter().map(|v| v * 1e12).collect(), 1),
        (e[..25].iter().map(|v| 1e-9 * (1.0 + v)).collect(), 4),
        (e.iter().map(|v| 1e12 * (2.0 + v)).collect(), 52),
        (
            (0..40)
                .map(|t| if t % 2 == 0 { 0.0 } else { 5.0 })
                .collect(),
            2,
        ),
        ((0..40).map(|t| (t as f64).exp()).collect(), 1),
        (vec![1.0, f64::NAN, 2.0], 1),
    ];
    for n in 1..20 {
        cases.push((e[..n].iter().map(|v| v + 1.0).collect(), 4));
    }
    for (y, m) in &cases {
        match Ets::fit(y, *m) {
            Ok(fit) => {
                for v in fit.forecast(20) {
                    assert!(v.is_finite(), "n={} m={m}: {v}", y.len());
                }
                for k in [0, 1, y.len() / 2, y.len()] {
                    for v in fit.refilter(&y[..k]).forecast(5) {
                        assert!(v.is_finite(), "refilter n={} k={k}", y.len());
                    }
                }
            }
            Err(why) => {
                assert!(
                    y.is_empty() || y.iter().any(|v| !v.is_finite()),
                    "n={} m={m}: {why}",
                    y.len()
                );
            }
        }
    }
}

#[test]
fn long_series_fits() {
    let e = noise(100_000, 17);
    let y: Vec<f64> = (0..100_000)
        .map(|t| 100.0 + 10.0 * ((t % 24) as f64 / 3.8).sin() + e[t])
        .collect();
    let fit = Ets::fit(&y, 24).unwrap();
    assert!(fit.forecast(48).iter().all(|v| v.is_finite()));
}

#[test]
fn refilter_on_the_training_series_reproduces_the_forecast() {
    let pattern = [0.9, 1.2, 1.0, 0.9];
    let e = noise(64, 21);
    let y: Vec<f64> = (0..64)
        .map(|t| (50.0 + t as f64) * pattern[t % 4] + 2.0 * e[t])
        .collect();
    for m in [1, 4] {
        let fit = Ets::fit(&y, m).unwrap();
        let again = fit.refilter(&y);
        let (a, b) = (fit.forecast(12), again.forecast(12));
        for (x, z) in a.iter().zip(&b) {
            assert!(close(*x, *z, 1e-12), "{x} vs {z}");
        }
        // A prefix gives a different, still finite, state.
        let short = fit.refilter(&y[..40]).forecast(12);
        assert!(short.iter().all(|v| v.is_finite()));
        assert_ne!(short, a);
    }
}

#[test]
fn refilter_falls_back_to_the_last_value_when_the_model_cannot_run() {
    let y: Vec<f64> = (0..40).map(|t| 10.0 + (t % 4) as f64 * 3.0).collect();
    let fit = Ets::fit_spec(&y, 4, EtsSpec::HOLT_WINTERS_MULTIPLICATIVE).unwrap();
    let bad = [5.0, -2.0, 0.0, -7.0];
    let f = fit.refilter(&bad).forecast(3);
    assert_eq!(f, vec![-7.0; 3]);
}

#[test]
fn serde_round_trip_is_bit_exact() {
    let pattern = [0.8, 1.1, 1.3, 0.8];
    let e = noise(48, 9);
    let y: Vec<f64> = (0..48)
        .map(|t| (100.0 + t as f64) * pattern[t % 4] + e[t])
        .collect();
    let fit = Ets::fit(&y, 4).unwrap();
    let bytes = postcard::to_stdvec(&fit).unwrap();
    let back: Ets = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, fit);
    assert_eq!(back.forecast(10), fit.forecast(10));
    let json = serde_json::to_string(&fit).unwrap();
    let back: Ets = serde_json::from_str(&json).unwrap();
    assert_eq!(back.forecast(10), fit.forecast(10));
    // Small: parameters and states, not the data.
    assert!(bytes.len() < 2_000, "{} bytes", bytes.len());
}

#[test]
fn heuristic_initial_season_recovers_the_pattern() {
    // Even and odd season lengths, on a trended series.
    for pattern in [vec![0.8, 1.1, 1.3, 0.8], vec![0.9, 1.2, 1.0, 0.7, 1.2]] {
        let m = pattern.len();
        let y: Vec<f64> = (0..8 * m)
            .map(|t| (100.0 + t as f64) * pattern[t % m])
            .collect();
        let init = super::init::heuristic(&y, m, TrendType::Additive, SeasonType::Multiplicative);
        let mean = pattern.iter().sum::<f64>() / m as f64;
        for (got, want) in init.season.iter().zip(&pattern) {
            assert!(close(*got, want / mean, 0.02), "m={m}: {got} vs {want}");
        }
        // Level and slope of the adjusted series: about 100 at t = 0, +1 per step.
        assert!(close(init.level, 99.0, 0.05), "{}", init.level);
        assert!(close(init.trend, 1.0, 0.1), "{}", init.trend);
        let add = super::init::heuristic(&y, m, TrendType::None, SeasonType::Additive);
        assert!(add.season.iter().sum::<f64>().abs() < 1e-9);
    }
}

#[test]
fn missing_observations_are_skipped_by_the_filter() {
    // SES, alpha 0.5, from level 0 over [2, NaN, 4]: the NaN neither scores
    // nor updates, so the level goes 1, 1, 2.5 and the errors are 2 and 3.
    let p = Params {
        alpha: 0.5,
        beta: 0.0,
        gamma: 0.0,
        phi: 1.0,
    };
    let pass = filter::run(EtsSpec::SES, &p, 0.0, 0.0, &mut [], &[2.0, f64::NAN, 4.0]).unwrap();
    assert!(close(pass.level, 2.5, 1e-12) && close(pass.sse, 13.0, 1e-12));
    // Holt: the missing step moves the level on by the trend.
    let holt = spec(
        ErrorType::Additive,
        TrendType::Additive,
        SeasonType::None,
        false,
    );
    let p = Params { beta: 0.0, ..p };
    let pass = filter::run(holt, &p, 0.0, 1.0, &mut [], &[1.0, f64::NAN, 3.0]).unwrap();
    assert!(
        close(pass.level, 3.0, 1e-12) && close(pass.sse, 0.0, 1e-12),
        "{pass:?}"
    );
    // The family fits a series with gaps and forecasts it.
    let mut y: Vec<f64> = (0..60)
        .map(|t| 20.0 + 0.5 * t as f64)
        .zip(noise(60, 4))
        .map(|(a, b)| a + b)
        .collect();
    for t in [5, 6, 7, 30, 59] {
        y[t] = f64::NAN;
    }
    let fit = Ets::fit(&y, 1).unwrap();
    let f = fit.forecast(5);
    assert!(f.iter().all(|v| (v - 50.0).abs() < 4.0), "{f:?}");
    assert!(Ets::fit(&[f64::NAN, f64::NAN, 1.0], 1).is_err());
}

#[test]
fn a_spike_at_the_end_does_not_run_away() {
    // Flat near 10, the last value 500: the damped trend caught from the
    // spike (ETS(M,Ad,N)) forecast 14,445 (80 points) and 2,749 (100) at
    // step 48 before it was left out.
    let off = EtsConfig {
        within_data_band: false,
        ..EtsConfig::default()
    };
    for (n, seed) in [(80, 2), (100, 2)] {
        let mut y: Vec<f64> = noise(n, seed).iter().map(|e| 10.0 + e).collect();
        y[n - 1] = 500.0;
        let band = Plausible::of(&y).unwrap();
        let wild = Ets::fit_with(&y, 1, &off).unwrap();
        assert!(!band.holds(&wild.forecast(48)), "{}", wild.describe());
        let fit = Ets::fit(&y, 1).unwrap();
        let f = fit.forecast(n);
        assert!(band.holds(&f), "{n}: {} {:?}", fit.describe(), &f[..48]);
    }
    // A trend the data carry is kept: the same fit with or without the band.
    let line: Vec<f64> = noise(40, 3)
        .iter()
        .enumerate()
        .map(|(t, e)| 20.0 + 0.5 * t as f64 + e)
        .collect();
    let fit = Ets::fit(&line, 1).unwrap();
    assert_eq!(fit, Ets::fit_with(&line, 1, &off).unwrap());
    let f = fit.forecast(10);
    assert!(f[9] > f[0] && f[0] > 38.0, "{} {f:?}", fit.describe());
}
