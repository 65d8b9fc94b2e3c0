//! Fit time of the multi-season path on long synthetic series:
//! `cargo run --release -p bench --example season_speed`.
//!
//! A 3-year daily series with seasons [7, 365] and a 100,000-point hourly
//! series with seasons [24, 168] (both: trend, the seasons and noise), each
//! fitted with `auto`, `ets` and `dhr` a few times (an argument keeps only
//! the cases whose name contains it, e.g. `daily`); prints the fastest and median
//! fit in wall-clock milliseconds (what a client waits for; the engine runs a
//! long fit's independent pieces on several threads) and in CPU milliseconds
//! of the whole process (what the fit costs, robust to other load on the
//! machine).

use engine::{Method, ModelSpec, SeriesData};
use std::f64::consts::PI;
use std::time::Instant;

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
            let mut walls = Vec::new();
            let mut cpus = Vec::new();
            let mut chosen = String::new();
            for _ in 0..runs {
                let (t0, c0) = (Instant::now(), bench::process_cpu_seconds());
                match spec.fit(&y) {
                    Ok(f) => chosen = f.description().to_string(),
                    Err(e) => chosen = format!("error: {e}"),
                }
                cpus.push((bench::process_cpu_seconds() - c0) * 1e3);
                walls.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            walls.sort_by(f64::total_cmp);
            cpus.sort_by(f64::total_cmp);
            println!(
                "{name:<36} {method:<5} wall fastest {:>7.1} ms  median {:>7.1} ms  \
                 cpu fastest {:>7.1} ms  median {:>7.1} ms  ({chosen})",
                walls[0],
                walls[walls.len() / 2],
                cpus[0],
                cpus[cpus.len() / 2]
            );
        }
    }
}
