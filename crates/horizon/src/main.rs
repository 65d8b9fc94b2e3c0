//! The `horizon` binary: `serve` runs the gateway (and, by default, workers and
//! an embedded store in the same process), `worker` runs a worker that joins a
//! broker, `bench` measures the engine on competition data.

mod bench_cmd;
mod distributed;
mod fault;
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
    Serve(serve::ServeArgs),
    /// Run a worker that takes jobs from the broker.
    Worker(worker_cmd::WorkerArgs),
    /// Fit, forecast and score every series of a long-format CSV.
    Bench(bench_cmd::BenchArgs),
    /// Measure forecasts/s and latency over HTTP (embedded, distributed, bare ceilings).
    Loadtest(loadtest::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Worker(args) => worker_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Loadtest(args) => Ok(loadtest::run(args)?),
    }
}
