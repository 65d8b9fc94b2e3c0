//! The `horizon` binary: `serve` runs the gateway (and, by default, workers and
//! an embedded store in the same process), `worker` runs a worker that joins a
//! broker, `bench` measures the engine on competition data, `forecast` forecasts
//! a CSV file in-process.

mod bench_cmd;
mod distributed;
mod fault;
mod forecast_cmd;
mod forecast_remote;
mod keys_cmd;
mod metrics_exporter;
mod serve;
mod worker_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "horizon", version, about = "Forecasting as a service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP gateway; without --broker also the workers and an embedded store.
    // Boxed: its many flags make it far larger than the other commands.
    Serve(Box<serve::ServeArgs>),
    /// Run a worker that takes jobs from the broker.
    Worker(worker_cmd::WorkerArgs),
    /// Fit, forecast and score every series of a long-format CSV.
    Bench(bench_cmd::BenchArgs),
    /// Forecast every series of a long-format CSV (unique_id,ds,y) in this process, or on a server (--url).
    Forecast(forecast_cmd::ForecastArgs),
    /// Measure forecasts/s and latency over HTTP (embedded, distributed, bare ceilings).
    Loadtest(loadtest::Args),
    /// Create, list and revoke API keys (in the store `serve` uses).
    Keys(keys_cmd::KeysArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Worker(args) => worker_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Loadtest(args) => Ok(loadtest::run(args)?),
        Command::Forecast(args) => forecast_cmd::run(args),
        Command::Keys(args) => keys_cmd::run(args),
    }
}
