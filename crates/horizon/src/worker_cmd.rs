//! `horizon worker`: a worker process that takes jobs from the broker.

use clap::Args;

#[derive(Args, Debug)]
pub struct WorkerArgs {}

pub fn run(args: WorkerArgs) -> anyhow::Result<()> {
    anyhow::bail!("worker is not implemented yet ({args:?})")
}
