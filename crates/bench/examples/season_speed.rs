//! Fit time of the multi-season path on long synthetic series:
//! `cargo run --release -p bench --example season_speed`.
//!
//! A 3-year daily series with seasons [7, 365] and a 100,000-point hourly
//! series with seasons [24, 168] (both: trend, the seasons and noise), each
//! fitted with `auto`, `ets` and `dhr` a few times (an argument keeps only
//! the cases whose name contains it, e.g. `daily`); prints the fastest and median
//! fit in thread CPU milliseconds (robust to other load on the machine).

use engine::{Method, ModelSpec, SeriesData};
use std::f64::consts::PI;

fn series(n: usize, periods: &[f64], seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|t| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let e = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let s: f64 = periods
                .iter()
                .enumerate()
                .map(|(i, p)| (3.0 + i as f64) * (2.0 * PI * t as f64 / p).sin())
                .sum();
            100.0 + 0.001 * t as f64 + s + 2.0 * e
        })
        .collect()
}

fn main() {
    let cases = [
        (
            "daily, 3 years, [7, 365]",
            3 * 365 + 1,
            vec![7usize, 365],
            7,
        ),
        (
            "hourly, 100,000 points, [24, 168]",
            100_000,
            vec![24, 168],
            3,
        ),
    ];
    // Optional filter: only the cases whose name contains the argument.
    let only = std::env::args().nth(1).unwrap_or_default();
    for (name, n, seasons, runs) in cases {
        if !name.contains(&only) {
            continue;
        }
        let periods: Vec<f64> = seasons.iter().map(|&m| m as f64).collect();
        let y = match SeriesData::parse(series(n, &periods, 42)) {
            Ok(y) => y,
            Err(e) => {
                eprintln!("{name}: {e}");
                continue;
            }
        };
        for method in [Method::Auto, Method::Ets, Method::Dhr] {
            let spec = ModelSpec::with_seasons(method, seasons.clone());
            let mut times = Vec::new();
            let mut chosen = String::new();
            for _ in 0..runs {
                let t0 = bench::thread_cpu_seconds();
                match spec.fit(&y) {
                    Ok(f) => chosen = f.description().to_string(),
                    Err(e) => chosen = format!("error: {e}"),
                }
                times.push((bench::thread_cpu_seconds() - t0) * 1e3);
            }
            times.sort_by(f64::total_cmp);
            println!(
                "{name:<36} {method:<5} fastest {:>8.1} ms  median {:>8.1} ms  ({chosen})",
                times[0],
                times[times.len() / 2]
            );
        }
    }
}
