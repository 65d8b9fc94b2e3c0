//! Filter forward against refit: the time to update fitted models with new
//! observations (`FittedModel::extend`) and to fit the longer series again,
//! per method. `cargo run --release -p engine --example filter_forward_bench
//! [n_series] [len] [new]`.

use engine::{Method, ModelSpec, SeriesData};
use std::time::Instant;

fn series(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|t| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = (x % 1000) as f64 / 1000.0 - 0.5;
            100.0 + 0.3 * t as f64 + 8.0 * ((t % 12) as f64 * 0.52).sin() + 4.0 * noise
        })
        .collect()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n_series = args.first().copied().unwrap_or(100);
    let len = args.get(1).copied().unwrap_or(120);
    let new = args.get(2).copied().unwrap_or(12);
    println!("{n_series} series of {len} values, {new} new observations each");
    println!("method           refit (ms)  extend (ms)  speed-up");
    for method in [
        Method::Auto,
        Method::Ets,
        Method::Arima,
        Method::Theta,
        Method::Ces,
        Method::Tsb,
        Method::Ses,
        Method::Naive,
    ] {
        let spec = ModelSpec::new(method, Some(12));
        let data: Vec<Vec<f64>> = (0..n_series).map(|i| series(len + new, i as u64)).collect();
        let fitted: Vec<_> = data
            .iter()
            .map(|y| {
                let history = SeriesData::parse(y[..len].to_vec()).expect("series");
                let model = spec.fit(&history).expect("fit");
                (history, model)
            })
            .collect();
        let t = Instant::now();
        for y in &data {
            let full = SeriesData::parse(y.clone()).expect("series");
            std::hint::black_box(spec.fit(&full).expect("fit"));
        }
        let refit = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        for (y, (history, model)) in data.iter().zip(&fitted) {
            std::hint::black_box(model.extend(history, &y[len..]).expect("extend"));
        }
        let extend = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "{:<16} {refit:>10.1} {extend:>12.2} {:>9.0}x",
            method.name(),
            refit / extend.max(1e-9)
        );
    }
}
