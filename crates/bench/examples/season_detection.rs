//! How well seasons are found without a frequency (`engine::seasonal::detect`,
//! what `POST /fit_model {"data": [...]}` uses):
//! `cargo run --release -p bench --example season_detection [FILE]`.
//!
//! With a long-format CSV (e.g. `../shared/data/m3.csv`): per group, how
//! often the season found in each training series is the declared `period`,
//! a multiple or a divisor of it, another lag, or none, and the thread CPU it
//! took. Always: on synthetic series without a season (white noise, a random
//! walk, AR(1) noise, intermittent counts) how often a season is found, and
//! on a sine of period 12 in noise how often 12 is found, 200 series each.

use std::collections::BTreeMap;

fn main() {
    if let Some(path) = std::env::args().nth(1) {
        match bench::data::read_long_csv(std::path::Path::new(&path)) {
            Ok(series) => declared(&series),
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(1);
            }
        }
    }
    synthetic();
}

fn declared(series: &[bench::data::Series]) {
    // group -> [same, multiple, divisor, other, none], series, seconds, slowest
    let mut groups: BTreeMap<&str, ([usize; 5], usize, f64, f64)> = BTreeMap::new();
    for s in series {
        let t0 = bench::thread_cpu_seconds();
        let found = engine::seasonal::detect(&s.train);
        let seconds = bench::thread_cpu_seconds() - t0;
        let class = match found {
            None => 4,
            Some(m) if m == s.period => 0,
            Some(m) if s.period > 1 && m % s.period == 0 => 1,
            Some(m) if s.period > 1 && s.period % m == 0 => 2,
            Some(_) => 3,
        };
        let g = groups.entry(&s.group).or_default();
        g.0[class] += 1;
        g.1 += 1;
        g.2 += seconds;
        g.3 = g.3.max(seconds);
    }
    println!("season found against the declared period (training part of each series)");
    println!(
        "{:<10} {:>7} {:>7} {:>8} {:>8} {:>6} {:>6} {:>9} {:>11}",
        "group", "series", "period", "multiple", "divisor", "other", "none", "cpu ms", "slowest ms"
    );
    for (group, (c, n, secs, slowest)) in &groups {
        println!(
            "{group:<10} {n:>7} {:>7} {:>8} {:>8} {:>6} {:>6} {:>9.1} {:>11.2}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            secs * 1e3,
            slowest * 1e3
        );
    }
    println!();
}

/// Uniform numbers in [0, 1) (SplitMix64).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) as f64) / (1u64 << 53) as f64
    }

    /// Mean 0, variance 1.
    fn noise(&mut self) -> f64 {
        (self.uniform() - 0.5) * 12f64.sqrt()
    }
}

type Generator = fn(&mut Rng, usize) -> Vec<f64>;

fn synthetic() {
    let kinds: [(&str, Generator, Option<usize>); 6] = [
        (
            "white noise",
            |r, n| (0..n).map(|_| r.noise()).collect(),
            None,
        ),
        (
            "random walk",
            |r, n| {
                let mut level = 0.0;
                (0..n)
                    .map(|_| {
                        level += r.noise();
                        level
                    })
                    .collect()
            },
            None,
        ),
        (
            "AR(1), phi 0.7",
            |r, n| {
                let mut v = 0.0;
                (0..n)
                    .map(|_| {
                        v = 0.7 * v + r.noise();
                        v
                    })
                    .collect()
            },
            None,
        ),
        (
            "intermittent counts",
            |r, n| {
                (0..n)
                    .map(|_| {
                        if r.uniform() < 0.3 {
                            (1.0 + 5.0 * r.uniform()).floor()
                        } else {
                            0.0
                        }
                    })
                    .collect()
            },
            None,
        ),
        (
            "sine 12, signal/noise 0.5",
            |r, n| sine(r, n, 1.0),
            Some(12),
        ),
        ("sine 12, signal/noise 2", |r, n| sine(r, n, 2.0), Some(12)),
    ];
    let lengths = [36, 60, 120, 500, 4000];
    println!("synthetic series, 200 each: how many get the season (none: any season found)");
    print!("{:<28}", "series");
    for n in lengths {
        print!(" {:>8}", format!("n={n}"));
    }
    println!(" {:>14}", "cpu ms n=4000");
    for (name, generate, want) in kinds {
        print!("{name:<28}");
        let mut seconds = 0.0;
        for n in lengths {
            let mut hits = 0;
            for seed in 0..200u64 {
                let y = generate(&mut Rng(seed + 1000 * n as u64), n);
                let t0 = bench::thread_cpu_seconds();
                let found = engine::seasonal::detect(&y);
                if n == 4000 {
                    seconds += bench::thread_cpu_seconds() - t0;
                }
                hits += match want {
                    None => usize::from(found.is_some()),
                    Some(m) => usize::from(found == Some(m)),
                };
            }
            print!(" {hits:>8}");
        }
        println!(" {:>14.1}", seconds * 1e3 / 200.0);
    }
}

/// A sine of period 12 whose variance is `snr` times the noise's.
fn sine(r: &mut Rng, n: usize, snr: f64) -> Vec<f64> {
    let amplitude = (2.0 * snr).sqrt();
    (0..n)
        .map(|t| amplitude * (std::f64::consts::TAU * t as f64 / 12.0).sin() + r.noise())
        .collect()
}
