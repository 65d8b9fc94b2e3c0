//! The engine benchmark without the service:
//! `cargo run --release -p bench --example bench -- ../shared/data/m3.csv --model ets`.

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Fit, forecast and score every series of a long-format CSV"
)]
struct Cli {
    #[command(flatten)]
    args: bench::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match bench::run_cli(&cli.args) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
