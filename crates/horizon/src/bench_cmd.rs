//! `horizon bench`: accuracy and speed of the engine on a long-format CSV.

use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Long-format CSV: dataset,series_id,group,period,horizon,split,t,value.
    pub file: PathBuf,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench is not implemented yet ({args:?})")
}
