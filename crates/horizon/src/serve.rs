//! `horizon serve`: the gateway, by default with in-process workers and an
//! embedded store.

use clap::Args;
use std::{net::SocketAddr, path::PathBuf};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address the HTTP API listens on.
    #[arg(long, env = "HORIZON_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the embedded store (used without --store).
    #[arg(long, env = "HORIZON_DATA_DIR", default_value = "./horizon-data")]
    pub data_dir: PathBuf,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("serve is not implemented yet ({args:?})")
}
